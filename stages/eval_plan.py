"""Stage `eval_plan`: how the students are evaluated, so that their evaluations rerun exactly when it changes.

Greedy students are evaluated exactly where the environment enumerates its lines, and then
`eval.games` and `eval.seed` do not apply; elsewhere they play `eval.games` sampled games from
`eval.seed`. Out: data/eval/plan.json ({"exact": true}, or {"games": N, "seed": S}), which
evaluate@<student> reads instead of those params.

    dvc repro eval_plan
"""

from pathlib import Path

from sftboot.core.config import load_params
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import write_json
from sftboot.envs import make_environment

PLAN_OUT = Path("data/eval/plan.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    environment = make_environment(params.env)
    plan = {"exact": True} if environment.evaluates_exactly else {"games": params.eval.games, "seed": params.eval.seed}
    write_json(PLAN_OUT, plan)
    print(f"eval_plan: students of {params.env.name} are evaluated " + ("exactly" if "exact" in plan else f"over {plan['games']} sampled games"))


if __name__ == "__main__":
    main()
