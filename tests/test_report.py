"""The report's pictures say what the numbers say: bars that stop at 100 %, outcome colours, intervals, no legend over data."""

import json
from pathlib import Path

import pytest

from sftboot.envs import builtin
from sftboot.evaluation.report import OUTCOME_COLOURS, outcome_figure, outcome_rows

ROOT = Path(__file__).resolve().parents[1]


def _rate(pct, low=None, high=None):
    return {"pct": pct} | ({"ci95_low": low, "ci95_high": high} if low is not None else {})


EVALS = {
    "teacher": {
        opponent: {
            "kind": "sampled",
            "games": 400,
            "win": _rate(w, w - 4, w + 4),
            "draw": _rate(d, d - 4, d + 4),
            "loss": _rate(100 - w - d, 100 - w - d - 3, 100 - w - d + 3),
        }
        for opponent, (w, d) in {"random": (90.0, 6.5), "optimal": (0.0, 75.75)}.items()
    },
    "rl": {
        opponent: {"kind": "exact", "lines": 100, "win": _rate(w), "draw": _rate(d), "loss": _rate(round(100 - w - d, 4))}
        for opponent, (w, d) in {"random": (84.2535, 13.7359), "optimal": (0.0, 94.4444)}.items()
    },
}


def test_dvc_outcome_plot_stacks_each_model_and_opponent_to_100_in_outcome_colours():
    rows = outcome_rows(EVALS, ["random", "optimal"])
    for model in EVALS:
        for opponent in ("random", "optimal"):
            bar = [row for row in rows if row["model"] == model and row["opponent"] == opponent]
            assert [row["outcome"] for row in sorted(bar, key=lambda row: row["order"])] == ["win", "draw", "loss"]
            assert sum(row["pct"] for row in bar) == pytest.approx(100, abs=0.01)
    template = json.loads((ROOT / ".dvc/plots/outcomes.json").read_text())
    encoding = template["spec"]["encoding"]
    assert encoding["x"]["stack"] == "zero" and encoding["x"]["scale"]["domain"] == [0, 100]
    assert dict(zip(encoding["color"]["scale"]["domain"], encoding["color"]["scale"]["range"])) == OUTCOME_COLOURS
    assert template["facet"]["row"]["field"] == "opponent"  # one bar per model and opponent, never both in one


def test_png_marks_intervals_of_sampled_rows_and_keeps_the_legend_off_the_bars():
    import matplotlib.pyplot as plt

    figure = outcome_figure(EVALS, builtin("tictactoe"))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    for axis in figure.axes:
        assert not legend.overlaps(axis.get_window_extent(renderer))
        labels = [label.get_text() for label in axis.get_yticklabels()]
        assert labels == ["teacher (400 games)", "rl (exact)"]
        error_bars = [container for container in axis.containers if type(container).__name__ == "ErrorbarContainer"]
        assert len(error_bars) == 2  # the sampled teacher's win edge and loss edge; the exact student has none
    plt.close(figure)


def test_an_environment_without_move_judgements_gets_its_own_tables_and_turns_figure(tmp_path):
    """Mastermind: no minimax column, no reference row, and episode lengths that stop at 100 % over two suites."""
    import polars as pl

    from sftboot.evaluation.report import outcome_table, turns_section
    from sftboot.evaluation.run import evaluate

    env = builtin("mastermind")
    evaluation = evaluate(env, env.scripted_teacher(1.0, 1.0), list(env.suites), 1, 0, 64)
    table = outcome_table({"sft": evaluation.metrics}, env, "distinct")
    assert "moves keeping the value" not in table[0] and "reference" not in table[0] and len(table) == 3
    assert table[2].startswith("| sft | exact, 24 lines | 100.00 |")
    lines = turns_section({"sft": (evaluation.games, evaluation.moves)}, tmp_path / "turns.png")
    mean = float(evaluation.games.group_by("opponent").agg((pl.col("probability") * pl.col("turns")).sum())["probability"].mean())
    assert f"{mean:.2f} turns per episode" in "\n".join(lines) and (tmp_path / "turns.png").stat().st_size > 0
