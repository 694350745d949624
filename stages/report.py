"""Stage `report`: the report card.

report.md puts this run's base, SFT and RL students and the teacher side by side in each of the
environment's suites (with its published reference rows and best possible results, where it has
them), with what each stage changed, the student-minus-teacher difference, where the students lose,
the data counts and stage times; report_outcomes.png and metrics/report/outcomes.json (a DVC plot)
show outcomes per model and suite; report_lines.png draws where the students lose (tic-tac-toe:
lost lines and costliest moves) or how long their episodes last; metrics/summary.json holds the
headline figures flat, as columns for `dvc exp show`; models/cards/<student>.md is each student's
model card with its evaluation (Hugging Face `model-index` results), to ship as its README.md.

    dvc repro report
"""

from pathlib import Path

import polars as pl

from sftboot.core.config import load_params
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import TIMINGS_DIR, atomic_path, write_json, write_text
from sftboot.core.workspace import replace_dir
from sftboot.envs import make_environment
from sftboot.evaluation.report import key_figures, outcome_rows, plot_outcomes, read_json, render_report, turns_section
from sftboot.training.card import completed_card

EVAL_DIR = Path("metrics/eval")
GAMES_DIR = Path("data/eval")
REPORT_OUT = Path("report.md")
PLOT_OUT = Path("report_outcomes.png")
LINES_PLOT_OUT = Path("report_lines.png")
OUTCOMES_OUT = Path("metrics/report/outcomes.json")
SUMMARY_OUT = Path("metrics/summary.json")
CARDS_OUT = Path("models/cards")  # each student's card with its evaluation, ready to replace models/<name>/README.md


@exits_cleanly
def main() -> None:
    params = load_params()
    environment = make_environment(params.env)
    evals = {path.stem: read_json(path) for path in sorted(EVAL_DIR.glob("*.json"))}
    counts = {name: read_json(Path(f"metrics/{name}.json")) for name in ("teacher", "filter", "validate", "base", "sft", "rl", "rl_without_sft")}
    seconds = {path.stem.replace("_", " "): read_json(path)["seconds"] for path in sorted(TIMINGS_DIR.glob("*.json"))}
    hardest = list(environment.suites)[-1]
    exact = [model for model in ("sft", "rl") if evals.get(model, {}).get(hardest, {}).get("kind") == "exact"]
    played = {model: (pl.read_parquet(GAMES_DIR / model / "games.parquet"), pl.read_parquet(GAMES_DIR / model / "moves.parquet")) for model in exact}
    with atomic_path(LINES_PLOT_OUT) as temporary:
        extras = environment.report_extras(played, temporary) or turns_section(played, temporary)
    write_text(REPORT_OUT, render_report(evals, counts, seconds, environment, extras))
    write_json(OUTCOMES_OUT, outcome_rows(evals, list(environment.suites)))
    write_json(SUMMARY_OUT, key_figures(evals, environment))
    with atomic_path(PLOT_OUT) as temporary:
        plot_outcomes(evals, environment, temporary)
    with replace_dir(CARDS_OUT) as folder:
        for name, evaluation in evals.items():
            card = Path(f"models/{name}/README.md")  # the students' (the teacher has no folder)
            if card.exists():
                (folder / f"{name}.md").write_text(completed_card(card, name, params.env.name, evaluation))
    print(f"report: {REPORT_OUT}, {PLOT_OUT}, {CARDS_OUT}/")


if __name__ == "__main__":
    main()
