"""Tic-tac-toe's part of the report: the published numbers, and where the students lose to the perfect player."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sftboot.envs.tictactoe import board as rules

NOTES = (  # what the report's reference columns mean, after its general note
    "*Moves keeping the value*: the reach-weighted share of legal moves that keep the position's "
    "minimax outcome. *Best possible*: the policy with the highest expected outcome reward in that suite "
    "(expectimax). The last column is the published reference row."
)

# Published reference (LLM RL Environments Lil Course, tic-tac-toe; LFM2-2.6B student, gpt-5-mini
# teacher; 100 games per cell): win, draw, loss, format, games with an invalid move, in %.
PUBLISHED = {
    "random": {
        "teacher": (90, 9, 1, 100, 0),
        "base": (40, 11, 49, 27.8, 40),
        "sft": (74, 13, 13, 99.8, 11),
        "rl": (90, 10, 0, 100, 0),
    },
    "optimal": {
        "teacher": (0, 76, 24, 100, 0),
        "base": (0, 11, 89, 24.7, 43),
        "sft": (0, 52, 48, 99, 14),
        "rl": (0, 97, 3, 99.8, 0),
    },
}


def losing_lines(games: pl.DataFrame, opponent: str, top: int) -> pl.DataFrame:
    """The most probable lost lines of an exact evaluation against one opponent."""
    lost = games.filter((pl.col("opponent") == opponent) & (pl.col("outcome") == "loss"))
    return lost.sort("probability", descending=True).head(top)


def costliest_mistakes(moves: pl.DataFrame, top: int) -> pl.DataFrame:
    """Legal moves that give up expected reward, one row per position and move, by reach × regret."""
    mistakes = moves.filter(pl.col("regret") > 0).group_by("opponent", "board", "cell", maintain_order=True)
    ranked = mistakes.agg(pl.col("reach").sum(), pl.col("regret").first(), pl.col("best_cells").first(), pl.col("keeps_value").first())
    return ranked.with_columns(cost=pl.col("reach") * pl.col("regret")).sort("cost", "board", descending=[True, False]).head(top)


def _line_text(row: dict) -> str:
    return " ".join(f"{mark}{cell}" for cell, mark in rules.marks_played(row["moves"], row["opponent_started"]))


def _board_text(board: str) -> str:
    return "/".join(board[r * 3 : r * 3 + 3].replace(" ", "·") for r in range(3))


def lines_section(played: dict[str, tuple[pl.DataFrame, pl.DataFrame]], top: int = 5) -> list[str]:
    """Where each exactly evaluated student loses to the perfect player, and its costliest moves."""
    lines = ["## Where the students lose", "", "`report_lines.png` draws these lines and positions.", ""]
    for model, (games, moves) in played.items():
        lost = losing_lines(games, "optimal", top)
        total = float(games.filter((pl.col("opponent") == "optimal") & (pl.col("outcome") == "loss"))["probability"].sum())
        lines += [f"**{model}** against the optimal opponent: lost lines together {100 * total:.2f} %" + (":" if lost.height else ", none."), ""]
        lines += [
            f"- {100 * row['probability']:.2f} %: {_line_text(row)}" + (f" ({row['invalid_moves']} invalid answers)" if row["invalid_moves"] else "")
            for row in lost.iter_rows(named=True)
        ]
        mistakes = costliest_mistakes(moves, top)
        lines += ["", f"**{model}**, costliest moves (expected outcome reward given up, in points)" + (":" if mistakes.height else ": none."), ""]
        lines += [
            f"- vs {row['opponent']}: {_board_text(row['board'])} X played {row['cell']}, best {', '.join(map(str, row['best_cells']))}; "
            f"reached {100 * row['reach']:.2f} %, costs {100 * row['cost']:.2f}" + ("" if row["keeps_value"] else " (gives up the minimax outcome)")
            for row in mistakes.iter_rows(named=True)
        ]
        lines.append("")
    return lines


def plot_lines(played: dict[str, tuple[pl.DataFrame, pl.DataFrame]], path: Path, top: int = 5) -> None:
    """Per student, a row of its likeliest lost lines against the perfect player (final boards, moves
    numbered) and a row of its costliest moves (the board before; orange: its move, green rings: the best)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(model, kind) for model in played for kind in ("lost", "mistake")]
    figure, axes = plt.subplots(len(rows), top + 1, figsize=(1.2 + 2.1 * top, 2.4 * len(rows)), squeeze=False, gridspec_kw={"width_ratios": [0.6] + [1] * top})
    for (model, kind), row_axes in zip(rows, axes):
        games, moves = played[model]
        items = losing_lines(games, "optimal", top) if kind == "lost" else costliest_mistakes(moves, top)
        for axis in row_axes:
            axis.set_axis_off()
        label = "lost against\nthe optimal\nopponent" if kind == "lost" else "costliest\nmoves"
        row_axes[0].text(0.5, 0.5, f"{model}\n{label}", ha="center", va="center", fontsize=10)
        if items.height == 0:
            row_axes[1].text(0.5, 0.5, "none", ha="center", va="center", fontsize=12, color="#2e7d32")
        for axis, item in zip(row_axes[1:], items.iter_rows(named=True)):
            if kind == "lost":
                _draw_board(axis, rules.marks_played(item["moves"], item["opponent_started"]), numbered=True)
                axis.set_title(f"{100 * item['probability']:.2f} % of games", fontsize=8)
            else:
                marks = [(cell, mark) for cell, mark in enumerate(item["board"]) if mark != " "]
                _draw_board(axis, marks, numbered=False, chosen=item["cell"], best=item["best_cells"])
                axis.set_title(f"vs {item['opponent']}: reached {100 * item['reach']:.2f} %\ncosts {100 * item['cost']:.2f} points", fontsize=8)
    figure.suptitle(
        "Lost lines: final boards, numbers give the order of moves.   Costliest moves: the board before the move; "
        "orange X: the student's move, green rings: the best moves.",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")  # the path may be a temporary name without .png
    plt.close(figure)


def _draw_board(axis, marks: list[tuple[int, str]], numbered: bool, chosen: int | None = None, best: list[int] = ()) -> None:
    from matplotlib.patches import Circle

    axis.set_xlim(0, 3)
    axis.set_ylim(3, 0)
    axis.set_aspect("equal")
    for k in (1, 2):
        axis.plot([k, k], [0, 3], color="#444", linewidth=1)
        axis.plot([0, 3], [k, k], color="#444", linewidth=1)
    for cell in best:
        axis.add_patch(Circle((cell % 3 + 0.5, cell // 3 + 0.5), 0.4, fill=False, edgecolor="#2e7d32", linewidth=2))
    for order, (cell, mark) in enumerate(marks, start=1):
        x, y = cell % 3 + 0.5, cell // 3 + 0.5
        axis.text(x, y, mark, ha="center", va="center", fontsize=18, color="#1565c0" if mark == "X" else "#c62828")
        if numbered:
            axis.text(x + 0.32, y + 0.32, str(order), ha="center", va="center", fontsize=7, color="#555")
    if chosen is not None:
        axis.text(chosen % 3 + 0.5, chosen // 3 + 0.5, "X", ha="center", va="center", fontsize=18, color="#ef6c00", fontweight="bold")
