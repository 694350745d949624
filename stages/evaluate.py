"""Stage `evaluate@<model>` / `evaluate_teacher`: one model in each of the environment's suites (tic-tac-toe: the random and the optimal opponent).

Students (models/base, models/sft, models/rl) decode greedily, so they are evaluated exactly where the
environment enumerates its lines: every line the game can take, all open lines of one depth answered in
one batch; elsewhere they play the sampled games data/eval/plan.json names (stage eval_plan). The
teacher samples, so it plays `eval.games` games per opponent through the same harness. Out: metrics/eval/<model>.json
(win/draw/loss %, format %, invalid-game %, mean reward; exact figures, or sampled ones with a
Wilson 95 % interval; for students the move quality) and data/eval/<model>/ (games.parquet: every
line or game with its probability; moves.parquet: every answer of an exact evaluation).

    dvc repro evaluate@sft
"""

import json
import sys
import time
from pathlib import Path

from sftboot.core.budget import check_budget
from sftboot.core.config import load_params
from sftboot.core.device import placement
from sftboot.core.errors import UserError, exits_cleanly
from sftboot.core.io import write_json, write_timing
from sftboot.envs import make_environment
from sftboot.evaluation.run import describe, evaluate, load_student_policy
from sftboot.policies import make_teacher

STUDENTS = ("base", "sft", "rl", "rl_without_sft")
PLAN_IN = Path("data/eval/plan.json")  # stage eval_plan: exactly, or how many sampled games from which seed


def student_plan() -> dict:
    if not PLAN_IN.exists():
        raise UserError(f"{PLAN_IN} is missing: run `dvc repro eval_plan` (how the students are evaluated) first")
    return json.loads(PLAN_IN.read_text())


@exits_cleanly(takes_arguments=True)
def main() -> None:
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in (*STUDENTS, "teacher"):
        raise UserError(f"usage: python stages/evaluate.py {{{'|'.join(STUDENTS)}|teacher}}")
    params = load_params()
    environment = make_environment(params.env)
    if name == "teacher":
        policy = make_teacher(params.teacher, environment)
    else:
        check_budget(Path(f"models/{name}"), params.eval.max_tokens_per_turn, "eval.max_tokens_per_turn")
        place = placement(**params.compute.model_dump())
        policy = load_student_policy(f"models/{name}", params.eval.max_tokens_per_turn, place)
    started = time.perf_counter()
    plan = {"games": params.eval.games, "seed": params.eval.seed} if name == "teacher" else student_plan()
    evaluation = evaluate(environment, policy, list(environment.suites), plan.get("games", 0), plan.get("seed", 0), params.eval.batch_size)
    results = evaluation.metrics
    evaluation.save(Path(f"data/eval/{name}"))
    write_json(Path(f"metrics/eval/{name}.json"), results)
    write_timing(f"evaluate_{name}", started)
    for opponent in environment.suites:
        print(f"{name} vs {opponent}: {describe(results[opponent])}")


if __name__ == "__main__":
    main()
