"""Stage `rl`: multi-turn RL of the SFT student in the same environment (TRL GRPOTrainer).

Each step plays `rl.games_per_step` whole games: groups of `rl.num_generations` games share an
opening and a difficulty (tic-tac-toe: the opponent's p) drawn from a stratum of [opponent_p_min, opponent_p_max], and
the group-relative advantage of each game's reward (outcome, format and invalid-move scores,
weighted by `rl.reward_weights`) trains every model token of that game; the environment's tokens
are masked. Loss `cispo` by default, as in the reference run. Rewards, frac_reward_zero_std,
completion length and step time are logged with dvclive under metrics/rl/. A killed run resumes
from its last checkpoint in .sftboot/rl/ (kept per params and SFT model, so a changed setting
starts afresh).

    dvc repro rl
"""

import hashlib
import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from dvclive import Live
from transformers.integrations import DVCLiveCallback

from sftboot.budget import FACTS_FILE, check_budget
from sftboot.card import write_card
from sftboot.config import load_params
from sftboot.device import is_main_process, launch_processes, leave_processes, placement
from sftboot.envs import make_environment
from sftboot.errors import exits_cleanly
from sftboot.io import write_json, write_timing
from sftboot.rl import latest_checkpoint, train_rl
from sftboot.student import load_student
from sftboot.trainlog import log_summary
from sftboot.workspace import WORK_DIR, replace_dir

MODEL_IN = Path("models/sft")
MODEL_OUT = Path("models/rl")
LIVE_DIR = Path("metrics/rl")
SUMMARY_OUT = Path("metrics/rl.json")


def run_fingerprint(params) -> str:
    """Checkpoints are only resumed by a run with the same settings and the same starting model."""
    digest = hashlib.sha256(json.dumps([params.seed, params.compute.model_dump(), params.env.model_dump(), params.rl.model_dump()]).encode())
    for weights in sorted(MODEL_IN.glob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest()[:16]


@exits_cleanly
def main() -> None:
    params = load_params()
    started = time.perf_counter()
    check_budget(MODEL_IN, params.rl.max_tokens_per_turn, "rl.max_tokens_per_turn")
    place = placement(**params.compute.model_dump())
    launch_processes(__file__, place)
    model, tokenizer = load_student(MODEL_IN, place.dtype)
    work_dir = WORK_DIR / "rl" / run_fingerprint(params)
    resuming = latest_checkpoint(work_dir) is not None  # then metrics/rl (persisted by DVC) holds the earlier steps
    with Live(dir=str(LIVE_DIR), dvcyaml=None, save_dvc_exp=False, report=None, resume=resuming) if is_main_process() else nullcontext() as live:
        callbacks = [DVCLiveCallback(live=live)] if live else []
        trained, history, answers = train_rl(model, tokenizer, params.rl, make_environment(params.env), params.seed, work_dir, callbacks, place)
    leave_processes()
    if not is_main_process():
        return
    at_cap = round(100 * answers["at_cap"] / answers["total"], 2) if answers["total"] else 0.0
    played = {"games": answers["games"], "answers": answers["total"], "answers_at_cap": {"pct": at_cap, "count": answers["at_cap"]}}
    summary = log_summary(history, "reward") | played | {"processes": place.processes}
    tenth = max(1, summary["steps"] // 10)
    trend = f"{summary['reward_mean_first_tenth']} → {summary['reward_mean_last_tenth']} (means over the first and last {tenth} steps)"
    with replace_dir(MODEL_OUT) as folder:
        trained.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if (MODEL_IN / FACTS_FILE).exists():  # what the SFT data said about answer lengths holds for the RL model too
            shutil.copy(MODEL_IN / FACTS_FILE, folder / FACTS_FILE)
        write_card(folder, "rl", params, {"RL games played": summary["games"], "RL mean game reward": trend})
    write_json(SUMMARY_OUT, summary)
    write_timing("rl", started, games_per_s=round(answers["games"] / (time.perf_counter() - started), 2))
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"rl: mean game reward {summary['first_reward']:.3f} -> {summary['final_reward']:.3f} over {summary['steps']} steps -> {MODEL_OUT}")


if __name__ == "__main__":
    main()
