"""The report card: this run beside the published reference, what each stage changed, student minus teacher, plots."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from sftboot.evaluation import OPPONENTS
from sftboot.exact import ceiling

# Published reference (LLM RL Environments Lil Course, tic-tac-toe; LFM2-2.6B student, gpt-5-mini
# teacher; 100 games per cell): win, draw, loss, format, games with an invalid move, in %.
REFERENCE = {
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
MODELS = ("teacher", "base", "sft", "rl")
OPPONENT_TITLES = {"random": "a random opponent (p = 1)", "optimal": "the optimal opponent (p = 0)"}
COLUMNS = ("win", "draw", "loss", "format", "invalid_games")


def _cell(rate: dict) -> str:
    """An exact rate to two decimals; a sampled one to one, with its interval."""
    if "ci95_low" not in rate:
        return f"{rate['pct']:.2f}"
    return f"{rate['pct']:.1f} [{rate['ci95_low']:.0f}–{rate['ci95_high']:.0f}]"


def _kind(result: dict) -> str:
    return f"exact, {result['lines']} lines" if result.get("kind") == "exact" else f"sampled, {result['games']} games"


def outcome_table(evals: dict[str, dict], opponent: str) -> list[str]:
    lines = [
        "| model | how | win % | draw % | loss % | format % | games with invalid move % | moves keeping the value % | mean reward | reference (win/draw/loss/format/invalid) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        if model not in evals:
            continue
        result = evals[model][opponent]
        reference = "/".join(str(v) for v in REFERENCE[opponent][model])
        cells = " | ".join(_cell(result[column]) for column in COLUMNS)
        quality = _cell(result["move_quality"]) if "move_quality" in result else "–"
        lines.append(f"| {model} | {_kind(result)} | {cells} | {quality} | {result['mean_reward']:.3f} | {reference} |")
    best = ceiling(OPPONENTS[opponent])
    lines.append(f"| best possible | expectimax | {best['win']:.2f} | {best['draw']:.2f} | {best['loss']:.2f} | 100.00 | 0.00 | – | – | – |")
    return lines


def differences(evals: dict[str, dict], pairs: list[tuple[str, str]]) -> list[str]:
    """Percentage-point differences, `model − other` for each pair both of whose evaluations exist."""
    lines = ["| change | opponent | Δ win | Δ draw | Δ loss | Δ format | Δ invalid |", "|---|---|---|---|---|---|---|"]
    for model, other in pairs:
        if model not in evals or other not in evals:
            continue
        for opponent in OPPONENT_TITLES:
            deltas = [evals[model][opponent][c]["pct"] - evals[other][opponent][c]["pct"] for c in COLUMNS]
            lines.append(f"| {model} − {other} | {opponent} | " + " | ".join(f"{d:+.1f}" for d in deltas) + " |")
    return lines


def key_figures(evals: dict[str, dict]) -> dict:
    """Flat headline numbers, one column each in `dvc exp show` and one line each in `dvc metrics diff`."""
    figures = {}
    for model in MODELS:
        if model in evals:
            figures[f"{model}_draw_vs_optimal"] = evals[model]["optimal"]["draw"]["pct"]
            figures[f"{model}_win_vs_random"] = evals[model]["random"]["win"]["pct"]
            figures[f"{model}_loss_vs_random"] = evals[model]["random"]["loss"]["pct"]
            figures[f"{model}_format"] = min(evals[model][opponent]["format"]["pct"] for opponent in OPPONENT_TITLES)
            figures[f"{model}_invalid_games"] = max(evals[model][opponent]["invalid_games"]["pct"] for opponent in OPPONENT_TITLES)
    return figures


def outcome_rows(evals: dict[str, dict]) -> list[dict]:
    """Long-format rows for the DVC outcome plot: one bar per model and opponent, its three outcomes stacked to 100 %."""
    return [
        {"model": model, "opponent": opponent, "outcome": outcome, "order": order, "pct": evals[model][opponent][outcome]["pct"]}
        for model in MODELS
        if model in evals
        for opponent in OPPONENT_TITLES
        for order, outcome in enumerate(("win", "draw", "loss"))
    ]


def losing_lines(games: pl.DataFrame, opponent: str, top: int) -> pl.DataFrame:
    """The most probable lost lines of an exact evaluation against one opponent."""
    lost = games.filter((pl.col("opponent") == opponent) & (pl.col("outcome") == "loss"))
    return lost.sort("probability", descending=True).head(top)


def costliest_mistakes(moves: pl.DataFrame, top: int) -> pl.DataFrame:
    """Legal moves that give up expected reward, one row per position and move, by reach × regret."""
    mistakes = moves.filter(pl.col("regret") > 0).group_by("opponent", "board", "cell", maintain_order=True)
    ranked = mistakes.agg(pl.col("reach").sum(), pl.col("regret").first(), pl.col("best_cells").first(), pl.col("keeps_value").first())
    return ranked.with_columns(cost=pl.col("reach") * pl.col("regret")).sort("cost", "board", descending=[True, False]).head(top)


def _marks(moves: list[int], opponent_started: bool) -> list[tuple[int, str]]:
    """(cell, mark) in the order played: the marks alternate from whoever started."""
    first, second = ("O", "X") if opponent_started else ("X", "O")
    return [(cell, first if i % 2 == 0 else second) for i, cell in enumerate(moves)]


def _line_text(row: dict) -> str:
    return " ".join(f"{mark}{cell}" for cell, mark in _marks(row["moves"], row["opponent_started"]))


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
                _draw_board(axis, _marks(item["moves"], item["opponent_started"]), numbered=True)
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


def render_report(evals: dict, counts: dict, stage_seconds: dict, played: dict[str, tuple[pl.DataFrame, pl.DataFrame]]) -> str:
    lines = ["# sftboot report", ""]
    lines += [
        "Greedy students are evaluated exactly, over every line the game can take (the coin for who starts and "
        "each of the opponent's possible replies, each line weighted by its probability): their rates carry no "
        "interval. The teacher samples, so its rates come from sampled games, with the Wilson 95 % interval in "
        "brackets. *Moves keeping the value*: the reach-weighted share of legal moves that keep the position's "
        "minimax outcome. *Best possible*: the policy with the highest expected outcome reward against that "
        "opponent (expectimax). The last column is the published reference row (LFM2-2.6B student, gpt-5-mini "
        "teacher, 100 games a cell).",
        "",
    ]
    for opponent, title in OPPONENT_TITLES.items():
        lines += [f"## Against {title}", ""] + outcome_table(evals, opponent) + [""]
    lines += ["## What each stage changed (percentage points)", ""] + differences(evals, [("sft", "base"), ("rl", "sft")]) + [""]
    lines += ["## Student minus teacher (percentage points)", ""]
    lines += differences(evals, [("base", "teacher"), ("sft", "teacher"), ("rl", "teacher")]) + [""]
    lines += lines_section(played)
    lines += ["## Data", ""]
    teacher, kept, validation = counts.get("teacher", {}), counts.get("filter", {}), counts.get("validate", {})
    lines.append(f"- teacher games: {teacher.get('games', '?')} ({teacher.get('policy', '?')}), cost ${teacher.get('cost_usd', 0):.4f}")
    lines.append(f"- kept for SFT: {kept.get('kept', '?')}; dropped by reason: {kept.get('dropped_by_reason', {})}")
    passed = sum(e["success"] for e in validation.get("expectations", []))
    lines.append(f"- validation: {passed} of {len(validation.get('expectations', []))} expectations met on {validation.get('games', '?')} games")
    if "sft" in counts:
        sft = counts["sft"]
        lines.append(f"- SFT: {sft['steps']} steps, loss {sft['first_loss']} → {sft['final_loss']}, {sft['truncated']} of {sft['examples']} examples truncated")
    if "rl" in counts:
        rl = counts["rl"]
        tenth = max(1, rl["steps"] // 10)
        lines.append(
            f"- RL: {rl['steps']} steps, mean game reward over the first {tenth} steps {rl['reward_mean_first_tenth']}, over the last {tenth} {rl['reward_mean_last_tenth']}"
        )
    lines += ["", "## Stage times (seconds, metrics/timings/)", ""]
    lines += [f"- {stage}: {seconds}" for stage, seconds in stage_seconds.items() if seconds is not None]
    lines += ["", "Plots: `dvc plots show` (outcomes per model and opponent, SFT loss, RL rewards); `report_outcomes.png`; `report_lines.png`.", ""]
    return "\n".join(lines)


OUTCOME_COLOURS = {"win": "#2e7d32", "draw": "#9e9e9e", "loss": "#c62828"}


def _how(result: dict) -> str:
    return "exact" if result.get("kind") == "exact" else f"{result.get('games', '?')} games"


def outcome_figure(evals: dict):
    """Win/draw/loss bars per model and opponent; a sampled bar's two edges carry their 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if m in evals]
    figure, axes = plt.subplots(1, 2, figsize=(10, 1.2 + 0.55 * len(models)), sharey=False)
    for axis, opponent in zip(axes, OPPONENT_TITLES):
        results = [evals[m][opponent] for m in models]
        left = [0.0] * len(models)
        for outcome, colour in OUTCOME_COLOURS.items():
            values = [result[outcome]["pct"] for result in results]
            axis.barh(range(len(models)), values, left=left, color=colour, label=outcome)
            left = [a + b for a, b in zip(left, values)]
        for row, result in enumerate(results):  # the win edge and the loss edge, each with its interval
            for outcome, edge in (("win", result["win"]["pct"]), ("loss", 100 - result["loss"]["pct"])):
                rate = result[outcome]
                if "ci95_low" in rate:
                    low, high = (rate["ci95_low"], rate["ci95_high"]) if outcome == "win" else (100 - rate["ci95_high"], 100 - rate["ci95_low"])
                    axis.errorbar(edge, row, xerr=[[edge - low], [high - edge]], fmt="none", ecolor="black", capsize=3, linewidth=1)
        axis.set_yticks(range(len(models)), [f"{m} ({_how(r)})" for m, r in zip(models, results)])
        axis.set_title(f"vs {OPPONENT_TITLES[opponent]}", fontsize=10)
        axis.set_xlim(0, 100)
        axis.set_xlabel("% of games (black: 95 % interval of a sampled edge)")
        axis.invert_yaxis()
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False)
    figure.tight_layout(rect=(0, 0.12, 1, 1))  # the legend sits below the plots, never over a bar
    return figure


def plot_outcomes(evals: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = outcome_figure(evals)
    figure.savefig(path, dpi=110, format="png")  # the path may be a temporary name without .png
    plt.close(figure)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}
