"""The report card: this run beside the published reference, what each stage changed, student minus teacher, plots."""

from __future__ import annotations

import json
from pathlib import Path

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
    return f"{rate['pct']:.1f} [{rate['ci95_low']:.0f}–{rate['ci95_high']:.0f}]"


def outcome_table(evals: dict[str, dict], opponent: str) -> list[str]:
    lines = [
        "| model | win % | draw % | loss % | format % | games with invalid move % | mean reward | reference (win/draw/loss/format/invalid) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        if model not in evals:
            continue
        result = evals[model][opponent]
        reference = "/".join(str(v) for v in REFERENCE[opponent][model])
        cells = " | ".join(_cell(result[column]) for column in COLUMNS)
        lines.append(f"| {model} | {cells} | {result['mean_reward']:.3f} | {reference} |")
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
    """Long-format rows for the DVC outcome plot."""
    return [
        {"model": model, "opponent": opponent, "outcome": outcome, "pct": evals[model][opponent][outcome]["pct"]}
        for model in MODELS
        if model in evals
        for opponent in OPPONENT_TITLES
        for outcome in ("win", "draw", "loss")
    ]


def render_report(evals: dict, counts: dict, stage_seconds: dict) -> str:
    lines = ["# sftboot report", ""]
    lines += [
        "Each cell: this run's rate with its Wilson 95 % interval in brackets; the last column is the "
        "published reference row (LFM2-2.6B student, gpt-5-mini teacher, 100 games a cell).",
        "",
    ]
    for opponent, title in OPPONENT_TITLES.items():
        games = next(iter(evals.values()))[opponent]["games"] if evals else 0
        lines += [f"## Against {title}: {games} games per model", ""] + outcome_table(evals, opponent) + [""]
    lines += ["## What each stage changed (percentage points)", ""] + differences(evals, [("sft", "base"), ("rl", "sft")]) + [""]
    lines += ["## Student minus teacher (percentage points)", ""]
    lines += differences(evals, [("base", "teacher"), ("sft", "teacher"), ("rl", "teacher")]) + [""]
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
        lines.append(f"- RL: {rl['steps']} steps, mean game reward {rl['first_reward']} → {rl['final_reward']}")
    lines += ["", "## Stage times (seconds, from metrics)", ""]
    lines += [f"- {stage}: {seconds}" for stage, seconds in stage_seconds.items() if seconds is not None]
    lines += ["", "Plots: `dvc plots show` (outcomes per model and opponent, SFT loss, RL rewards); `report_outcomes.png`.", ""]
    return "\n".join(lines)


def plot_outcomes(evals: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if m in evals]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    colours = {"win": "#2e7d32", "draw": "#9e9e9e", "loss": "#c62828"}
    for axis, opponent in zip(axes, OPPONENT_TITLES):
        left = [0.0] * len(models)
        for outcome, colour in colours.items():
            values = [evals[m][opponent][outcome]["pct"] for m in models]
            axis.barh(models, values, left=left, color=colour, label=outcome)
            left = [a + b for a, b in zip(left, values)]
        axis.set_title(f"vs {OPPONENT_TITLES[opponent]}")
        axis.set_xlim(0, 100)
        axis.set_xlabel("% of games")
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")  # the path may be a temporary name without .png
    plt.close(figure)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}
