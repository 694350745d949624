"""Stage `report`: the report card.

report.md puts this run's base, SFT and RL students and the teacher beside the published
reference rows and the best possible results, with what each stage changed, the student-minus-teacher
difference, where the students lose, the data counts and stage times; report_outcomes.png and
metrics/report/outcomes.json (a DVC plot) show outcomes per model and opponent; report_lines.png
draws the students' lost lines against the perfect player and their costliest moves;
metrics/summary.json holds the headline figures flat, as columns for `dvc exp show`.

    dvc repro report
"""

from pathlib import Path

import polars as pl

from sftboot.errors import exits_cleanly
from sftboot.io import TIMINGS_DIR, atomic_path, write_json, write_text
from sftboot.report import key_figures, outcome_rows, plot_lines, plot_outcomes, read_json, render_report

EVAL_DIR = Path("metrics/eval")
GAMES_DIR = Path("data/eval")
REPORT_OUT = Path("report.md")
PLOT_OUT = Path("report_outcomes.png")
LINES_PLOT_OUT = Path("report_lines.png")
OUTCOMES_OUT = Path("metrics/report/outcomes.json")
SUMMARY_OUT = Path("metrics/summary.json")


@exits_cleanly
def main() -> None:
    evals = {path.stem: read_json(path) for path in sorted(EVAL_DIR.glob("*.json"))}
    counts = {name: read_json(Path(f"metrics/{name}.json")) for name in ("teacher", "filter", "validate", "base", "sft", "rl")}
    seconds = {path.stem.replace("_", " "): read_json(path)["seconds"] for path in sorted(TIMINGS_DIR.glob("*.json"))}
    exact = [model for model in ("sft", "rl") if evals.get(model, {}).get("optimal", {}).get("kind") == "exact"]
    played = {model: (pl.read_parquet(GAMES_DIR / model / "games.parquet"), pl.read_parquet(GAMES_DIR / model / "moves.parquet")) for model in exact}
    write_text(REPORT_OUT, render_report(evals, counts, seconds, played))
    write_json(OUTCOMES_OUT, outcome_rows(evals))
    write_json(SUMMARY_OUT, key_figures(evals))
    with atomic_path(PLOT_OUT) as temporary:
        plot_outcomes(evals, temporary)
    with atomic_path(LINES_PLOT_OUT) as temporary:
        plot_lines(played, temporary)
    print(f"report: {REPORT_OUT}, {PLOT_OUT}")


if __name__ == "__main__":
    main()
