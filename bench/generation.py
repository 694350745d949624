"""Benchmark: student games/s, all live games batched per turn vs one game at a time.

Same model, same game seeds, greedy decoding. Uses models/sft when the pipeline has made it
(a student that answers in format, so games look like real evaluation), else a fresh builtin.

    python bench/generation.py [--games 64] [--model models/sft]
"""

import argparse
import tempfile
import time
from pathlib import Path

from sftboot.core.config import defaults
from sftboot.engine.environment import game_specs
from sftboot.engine.generation import StudentPolicy
from sftboot.engine.rollout import play_games
from sftboot.envs import project_environment
from sftboot.training.student import load_student, materialize_base


def games_per_s(model, tokenizer, games: int, batch_size: int) -> float:
    specs = game_specs(games, seed=0, p_min=0.0, p_max=1.0, num_groups=4)
    policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=48)
    started = time.perf_counter()
    play_games(project_environment(), policy, specs, batch_size=batch_size, description=f"batch {batch_size}")
    return games / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=64)
    parser.add_argument("--model", default="models/sft")
    args = parser.parse_args()
    folder = Path(args.model)
    if not folder.exists():
        folder = Path(tempfile.mkdtemp())
        materialize_base(project_environment(), "builtin:tiny", defaults("student.builtin"), seed=0, out=folder)
    model, tokenizer = load_student(folder)
    model.eval()
    single = games_per_s(model, tokenizer, max(4, args.games // 8), batch_size=1)
    batched = games_per_s(model, tokenizer, args.games, batch_size=args.games)
    print(f"model {folder}: one game at a time {single:.2f} games/s, batched ({args.games}) {batched:.2f} games/s, speed-up {batched / single:.1f}x")


if __name__ == "__main__":
    main()
