"""Stage `report`: the report card.

report.md puts this run's base, SFT and RL students and the teacher beside the published
reference rows, with the student-minus-teacher difference, the data counts and stage times;
report_outcomes.png and metrics/report/outcomes.json (a DVC plot) show outcomes per model and opponent;
metrics/summary.json holds the headline figures flat, as columns for `dvc exp show`.

    dvc repro report
"""

from pathlib import Path

from sftboot.errors import exits_cleanly
from sftboot.io import atomic_path, write_json, write_text
from sftboot.report import key_figures, outcome_rows, plot_outcomes, read_json, render_report

EVAL_DIR = Path("metrics/eval")
REPORT_OUT = Path("report.md")
PLOT_OUT = Path("report_outcomes.png")
OUTCOMES_OUT = Path("metrics/report/outcomes.json")
SUMMARY_OUT = Path("metrics/summary.json")


@exits_cleanly
def main() -> None:
    evals = {path.stem: read_json(path) for path in sorted(EVAL_DIR.glob("*.json"))}
    counts = {name: read_json(Path(f"metrics/{name}.json")) for name in ("teacher", "filter", "validate", "base", "sft", "rl")}
    seconds = {"base (pretraining)": counts["base"].get("pretrain_seconds")}
    seconds |= {name: counts[name].get("seconds") for name in ("sft", "rl")}
    seconds |= {f"evaluate {name}": result.get("seconds") for name, result in evals.items()}
    write_text(REPORT_OUT, render_report(evals, counts, seconds))
    write_json(OUTCOMES_OUT, outcome_rows(evals))
    write_json(SUMMARY_OUT, key_figures(evals))
    with atomic_path(PLOT_OUT) as temporary:
        plot_outcomes(evals, temporary)
    print(f"report: {REPORT_OUT}, {PLOT_OUT}")


if __name__ == "__main__":
    main()
