"""Stage `rl`: multi-turn RL of the SFT student in the same environment (TRL GRPOTrainer).

Each step plays `rl.games_per_step` whole games: groups of `rl.num_generations` games share an
opening and a difficulty (tic-tac-toe: the opponent's p) drawn from a stratum of [difficulty_min, difficulty_max],
or start at a position where the SFT student's exact evaluation (data/eval/sft) loses reward, and
the group-relative advantage of each game's reward (outcome, format and invalid-move scores,
weighted by `rl.reward_weights`) trains every model token of that game; the environment's tokens
are masked. Loss `cispo` by default, as in the reference run. Rewards, frac_reward_zero_std,
completion length, step time and the best move's share at the costliest positions are logged
with dvclive under metrics/rl/. A killed run resumes
from its last checkpoint in .sftboot/rl/ (kept per params and SFT model, so a changed setting
starts afresh).

`python stages/rl.py base` (stage `rl_without_sft`) runs the same RL from the base student, the
recipe without its bootstrap, into models/rl_without_sft and metrics/rl_without_sft* (openings only).

    dvc repro rl
"""

import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import polars as pl
from dvclive import Live
from transformers.integrations import DVCLiveCallback

from sftboot.core.budget import FACTS_FILE, check_budget
from sftboot.core.config import load_params
from sftboot.core.device import is_main_process, launch_processes, leave_processes, placement
from sftboot.core.errors import UserError, exits_cleanly
from sftboot.core.io import write_json, write_timing
from sftboot.core.workspace import WORK_DIR, replace_dir
from sftboot.data.dataset import read_games
from sftboot.envs import make_environment
from sftboot.training.card import inherited, write_card
from sftboot.training.rl import latest_checkpoint, train_rl
from sftboot.training.student import load_student
from sftboot.training.trainlog import log_summary
from sftboot.training.weakspots import weak_spots

TRAINED = {"sft": "rl", "base": "rl_without_sft"}  # the model RL starts from -> what the run is called
TEACHER_GAMES = Path("data/sft/filtered.parquet")  # rl.imitation's games: those the SFT student learned from


def run_fingerprint(params, model_in: Path) -> str:
    """Checkpoints are only resumed by a run with the same settings and the same starting model."""
    digest = hashlib.sha256(json.dumps([params.seed, params.compute.model_dump(), params.env.model_dump(), params.rl.model_dump()]).encode())
    for weights in sorted(model_in.glob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest()[:16]


def exact_results(model: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The starting student's exactly evaluated lines and answers (where it loses reward: RL starts a share of
    its games there); sampled suites stay out, their games being the evaluation's own."""
    results = json.loads(Path(f"metrics/eval/{model}.json").read_text())
    exact = [suite for suite, result in results.items() if result["kind"] == "exact"]
    lines = pl.read_parquet(f"data/eval/{model}/games.parquet").filter(pl.col("opponent").is_in(exact))
    return lines, pl.read_parquet(f"data/eval/{model}/moves.parquet")


def spot_summary(history: list[dict]) -> dict:
    """What RL did where the starting student loses reward (sftboot.training.spotprobe): probe first and last, game counts in all."""
    probes = [entry for entry in history if "probe/p_best" in entry]
    counts = Counter()
    for entry in history:
        counts.update({name.removeprefix("spots/"): value for name, value in entry.items() if name.startswith("spots/")})
    if not probes:
        return {"spots": dict(counts)}
    first, last = probes[0], probes[-1]
    trend = {f"{name}_{when}": entry[f"probe/{name}"] for name in ("p_best", "p_invalid") for when, entry in (("first", first), ("last", last))}
    return {"spots": dict(counts) | trend | {"probe_steps": [first["step"], last["step"]]}}


@exits_cleanly(takes_arguments=True)
def main() -> None:
    start = sys.argv[1] if len(sys.argv) > 1 else "sft"
    if start not in TRAINED:
        raise UserError(f"usage: python stages/rl.py [{'|'.join(TRAINED)}] (the model RL starts from; default sft)")
    name, model_in = TRAINED[start], Path(f"models/{start}")
    params = load_params()
    started = time.perf_counter()
    check_budget(model_in, params.rl.max_tokens_per_turn, "rl.max_tokens_per_turn")
    place = placement(**params.compute.model_dump())
    launch_processes(__file__, place)
    model, tokenizer = load_student(model_in, place.dtype)
    work_dir = WORK_DIR / name / run_fingerprint(params, model_in)
    resuming = latest_checkpoint(work_dir) is not None  # then metrics/<name> (persisted by DVC) holds the earlier steps
    with Live(dir=f"metrics/{name}", dvcyaml=None, save_dvc_exp=False, report=None, resume=resuming) if is_main_process() else nullcontext() as live:
        callbacks = [DVCLiveCallback(live=live)] if live else []
        environment = make_environment(params.env)
        # the base student has no legal move to improve on: each of its spots is a malformed answer, and
        # starting there would only lengthen the prompts of a run that has no signal anyway
        spots = weak_spots(environment, *exact_results(start), params.rl.weak_spots.limit, params.seed) if start == "sft" else []
        # the run without SFT never sees the teacher's games: imitating them would be SFT by another name
        teacher_games = read_games(TEACHER_GAMES) if start == "sft" and params.rl.imitation.weight else None
        trained, history, answers = train_rl(model, tokenizer, params.rl, environment, params.seed, work_dir, callbacks, place, spots, teacher_games)
    leave_processes()
    if not is_main_process():
        return
    at_cap = round(100 * answers["at_cap"] / answers["total"], 2) if answers["total"] else 0.0
    played = {"games": answers["games"], "answers": answers["total"], "answers_at_cap": {"pct": at_cap, "count": answers["at_cap"]}}
    summary = log_summary(history, "reward") | played | {"processes": place.processes} | spot_summary(history)
    tenth = max(1, summary["steps"] // 10)
    trend = f"{summary['reward_mean_first_tenth']} → {summary['reward_mean_last_tenth']} (means over the first and last {tenth} steps)"
    with replace_dir(Path(f"models/{name}")) as folder:
        trained.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if (model_in / FACTS_FILE).exists():  # what the SFT data said about answer lengths holds for the RL model too
            shutil.copy(model_in / FACTS_FILE, folder / FACTS_FILE)
        write_card(folder, name, params, {"RL games played": summary["games"], "RL mean game reward": trend}, inherited(model_in))
    write_json(Path(f"metrics/{name}.json"), summary)
    write_timing(name, started, games_per_s=round(answers["games"] / (time.perf_counter() - started), 2))
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"{name}: mean game reward {summary['first_reward']:.3f} -> {summary['final_reward']:.3f} over {summary['steps']} steps -> models/{name}")


if __name__ == "__main__":
    main()
