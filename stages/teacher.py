"""Stage `teacher`: the teacher plays N games of the environment, over a range of difficulties.

Out: data/rollouts/teacher.parquet (one row per game) and metrics/teacher.json.
A killed run resumes from .sftboot/journal/ and asks the teacher nothing it already answered.
Once cached by DVC, rerunning with the same params never calls an API teacher again;
`dvc repro --force teacher` is the way to draw new games.

    dvc repro teacher
"""

import time
from collections import Counter
from pathlib import Path

from sftboot.core.config import load_params
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import write_json, write_parquet, write_timing
from sftboot.engine.environment import game_specs
from sftboot.engine.metrics import api_counts, summarize
from sftboot.engine.rollout import play_games
from sftboot.envs import make_environment
from sftboot.policies import teacher_backend

GAMES_OUT = Path("data/rollouts/teacher.parquet")
METRICS_OUT = Path("metrics/teacher.json")
JOURNAL_DIR = Path(".sftboot/journal/teacher")


@exits_cleanly
def main() -> None:
    params = load_params()
    config = params.teacher
    environment = make_environment(params.env)
    backend, settings = teacher_backend(config)
    teacher = backend.build(settings, environment)
    specs = game_specs(config.games, params.seed, config.difficulty_min, config.difficulty_max, config.num_groups)
    started = time.perf_counter()
    clock = Counter()  # this run's answers only: a resumed run's journaled games were timed before

    def save(games):
        elapsed = time.perf_counter() - started
        write_parquet(GAMES_OUT, games)
        api = {"api": api_counts(games)} if backend.api else {}
        write_json(METRICS_OUT, summarize(games) | api | {"policy": teacher.policy_id})
        latency = {"seconds_per_answer": round(clock["answer_seconds"] / clock["answers"], 4)} if clock["answers"] else {}
        write_timing("teacher", started, games_per_s=round(games.height / elapsed, 2), **latency)

    games = play_games(environment, teacher, specs, len(specs), description="teacher games", journal_dir=JOURNAL_DIR, save=save, clock=clock)
    print(f"teacher: {games.height} games -> {GAMES_OUT}")


if __name__ == "__main__":
    main()
