"""Stage `evaluate@<model>` / `evaluate_teacher`: one model against the random and the optimal opponent.

Students (models/base, models/sft, models/rl) decode greedily, all live games batched per turn;
the teacher is evaluated through the same harness. Out: metrics/eval/<model>.json with
win/draw/loss %, format %, invalid-game % (each with a Wilson 95 % interval), mean reward,
mean turns and generated tokens per game.

    dvc repro evaluate@sft
"""

import sys
import time
from pathlib import Path

from sftboot.config import load_params
from sftboot.errors import UserError, exits_cleanly
from sftboot.evaluation import OPPONENTS, evaluate, load_student_policy
from sftboot.io import write_json
from sftboot.policies import make_teacher

STUDENTS = ("base", "sft", "rl")


@exits_cleanly
def main() -> None:
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in (*STUDENTS, "teacher"):
        raise UserError(f"usage: python stages/evaluate.py {{{'|'.join(STUDENTS)}|teacher}}")
    params = load_params()
    if name == "teacher":
        policy = make_teacher(params.teacher)
    else:
        policy = load_student_policy(f"models/{name}", params.eval.max_tokens_per_turn)
    started = time.perf_counter()
    results = evaluate(policy, list(OPPONENTS), params.eval.games, params.eval.seed, params.env.max_turns, params.eval.batch_size)
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_json(Path(f"metrics/eval/{name}.json"), results)
    for opponent in OPPONENTS:
        r = results[opponent]
        print(f"{name} vs {opponent}: win {r['win']['pct']}% draw {r['draw']['pct']}% loss {r['loss']['pct']}% "
              f"format {r['format']['pct']}% invalid games {r['invalid_games']['pct']}%")


if __name__ == "__main__":
    main()
