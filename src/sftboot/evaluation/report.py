"""The report card: this run beside the environment's reference, what each stage changed, student minus teacher, plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from sftboot.engine.environment import Environment

MODELS = ("teacher", "base", "sft", "rl", "rl_without_sft")
COLUMNS = ("win", "draw", "loss", "format", "invalid_games")


def _cell(rate: dict) -> str:
    """An exact rate to two decimals; a sampled one to one, with its interval."""
    if "ci95_low" not in rate:
        return f"{rate['pct']:.2f}"
    return f"{rate['pct']:.1f} [{rate['ci95_low']:.0f}–{rate['ci95_high']:.0f}]"


def _kind(result: dict) -> str:
    return f"exact, {result['lines']} lines" if result.get("kind") == "exact" else f"sampled, {result['games']} games"


def outcome_table(evals: dict[str, dict], environment: Environment, suite: str) -> list[str]:
    """One row per model in one suite; the environment's published rows and best possible policy where it has them."""
    reference = environment.reference(suite)
    judged = any("move_quality" in evals[model][suite] for model in evals)  # only environments that judge each move
    lines = [
        "| model | how | win % | draw % | loss % | format % | games with invalid move % |"
        + (" moves keeping the value % |" if judged else "")
        + " mean reward |"
        + (" reference (win/draw/loss/format/invalid) |" if reference else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if judged else "") + "---|" + ("---|" if reference else ""),
    ]
    for model in MODELS:
        if model not in evals:
            continue
        result = evals[model][suite]
        cells = " | ".join(_cell(result[column]) for column in COLUMNS)
        quality = (f" {_cell(result['move_quality'])} |" if "move_quality" in result else " – |") if judged else ""
        row = reference["published"].get(model) if reference else None  # the reference ran no control without SFT
        published = (f" {'/'.join(str(v) for v in row)} |" if row else " – |") if reference else ""
        lines.append(f"| {model} | {_kind(result)} | {cells} |{quality} {result['mean_reward']:.3f} |{published}")
    if reference:
        best = reference["best"]
        lines.append(f"| best possible | {reference['best_how']} | {best['win']:.2f} | {best['draw']:.2f} | {best['loss']:.2f} | 100.00 | 0.00 | – | – | – |")
    return lines


def differences(evals: dict[str, dict], suites: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """Percentage-point differences, `model − other` for each pair both of whose evaluations exist."""
    lines = ["| change | suite | Δ win | Δ draw | Δ loss | Δ format | Δ invalid |", "|---|---|---|---|---|---|---|"]
    for model, other in pairs:
        if model not in evals or other not in evals:
            continue
        for opponent in suites:
            deltas = [evals[model][opponent][c]["pct"] - evals[other][opponent][c]["pct"] for c in COLUMNS]
            lines.append(f"| {model} − {other} | {opponent} | " + " | ".join(f"{d:+.1f}" for d in deltas) + " |")
    return lines


def key_figures(evals: dict[str, dict], environment: Environment) -> dict:
    """Flat headline numbers, one column each in `dvc exp show` and one line each in `dvc metrics diff`."""
    figures = {}
    for model in MODELS:
        if model in evals:
            for suite, outcome in environment.headline or [(suite, "win") for suite in environment.suites]:
                figures[f"{model}_{outcome}_vs_{suite}"] = evals[model][suite][outcome]["pct"]
            figures[f"{model}_format"] = min(evals[model][suite]["format"]["pct"] for suite in environment.suites)
            figures[f"{model}_invalid_games"] = max(evals[model][suite]["invalid_games"]["pct"] for suite in environment.suites)
    return figures


def outcome_rows(evals: dict[str, dict], suites: list[str]) -> list[dict]:
    """Long-format rows for the DVC outcome plot: one bar per model and opponent, its three outcomes stacked to 100 %."""
    return [
        {"model": model, "opponent": opponent, "outcome": outcome, "order": order, "pct": evals[model][opponent][outcome]["pct"]}
        for model in MODELS
        if model in evals
        for opponent in suites
        for order, outcome in enumerate(("win", "draw", "loss"))
    ]


def render_report(evals: dict, counts: dict, stage_seconds: dict, environment: Environment, extras: list[str]) -> str:
    """report.md; `extras` is the environment's own section on where the students lose."""
    lines = [f"# sftboot report: {environment.name}", ""]
    lines += [
        "Greedy students are evaluated exactly where the environment can enumerate its chance (every line an "
        "episode can take, each weighted by its probability): their rates carry no interval. A policy that "
        "samples (the teacher) plays sampled games, with the Wilson 95 % interval in brackets."
        + (f" {reference['notes']}" if (reference := environment.reference(next(iter(environment.suites)))) else ""),
        "",
    ]
    suites = list(environment.suites)
    for suite in suites:
        lines += [f"## Against {environment.title(suite)}", ""] + outcome_table(evals, environment, suite) + [""]
    lines += (
        ["## What each stage changed (percentage points)", ""] + differences(evals, suites, [("sft", "base"), ("rl", "sft"), ("rl_without_sft", "base")]) + [""]
    )
    lines += ["## Student minus teacher (percentage points)", ""]
    lines += differences(evals, suites, [("base", "teacher"), ("sft", "teacher"), ("rl", "teacher")]) + [""]
    lines += extras
    lines += ["## Data", ""]
    teacher, kept, validation = counts.get("teacher", {}), counts.get("filter", {}), counts.get("validate", {})
    lines.append(f"- teacher games: {teacher.get('games', '?')} ({teacher.get('policy', '?')}), cost ${teacher.get('cost_usd', 0):.4f}")
    lines.append(f"- kept for SFT: {kept.get('kept', '?')}; dropped by reason: {kept.get('dropped_by_reason', {})}")
    passed = sum(e["success"] for e in validation.get("expectations", []))
    lines.append(f"- validation: {passed} of {len(validation.get('expectations', []))} expectations met on {validation.get('games', '?')} games")
    if "sft" in counts:
        sft = counts["sft"]
        lines.append(f"- SFT: {sft['steps']} steps, loss {sft['first_loss']} → {sft['final_loss']}, {sft['truncated']} of {sft['examples']} examples truncated")
    for name, title in (("rl", "RL"), ("rl_without_sft", "RL without SFT")):
        if name in counts:
            lines += rl_lines(title, counts[name])
    lines += ["", "## Stage times (seconds, metrics/timings/)", ""]
    lines += [f"- {stage}: {seconds}" for stage, seconds in stage_seconds.items() if seconds is not None]
    lines += [
        "",
        "Plots: `dvc plots show` (outcomes per model and opponent, SFT loss, RL rewards, RL at the costliest positions); `report_outcomes.png`; `report_lines.png`.",
        "",
    ]
    return "\n".join(lines)


def rl_lines(title: str, rl: dict) -> list[str]:
    """The reward trend, and what RL did at the starting student's costliest positions (sftboot.training.spotprobe)."""
    tenth = max(1, rl["steps"] // 10)
    lines = [
        f"- {title}: {rl['steps']} steps, mean game reward over the first {tenth} steps {rl['reward_mean_first_tenth']}, over the last {tenth} {rl['reward_mean_last_tenth']}"
    ]
    spots = rl.get("spots", {})
    if "p_best_first" in spots:
        first, last = spots["probe_steps"]
        lines.append(
            f"  - at the costliest positions, best move sampled {100 * spots['p_best_first']:.1f} % (step {first}) → {100 * spots['p_best_last']:.1f} % "
            f"(step {last}), no legal move {100 * spots['p_invalid_first']:.1f} % → {100 * spots['p_invalid_last']:.1f} %"
        )
    if spots:
        lines.append(
            f"  - groups started there: {spots.get('spot_groups', 0)}; games from an opening that reached one: {spots.get('opening_games_at_spots', 0)}; "
            f"groups whose games there scored differently: {spots.get('groups_with_signal_at_spots', 0)}"
        )
    return lines


OUTCOME_COLOURS = {"win": "#2e7d32", "draw": "#9e9e9e", "loss": "#c62828"}


def _how(result: dict) -> str:
    return "exact" if result.get("kind") == "exact" else f"{result.get('games', '?')} games"


def outcome_figure(evals: dict, environment: Environment):
    """Win/draw/loss bars per model and opponent; a sampled bar's two edges carry their 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in MODELS if m in evals]
    suites = list(environment.suites)
    figure, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 1.2 + 0.55 * len(models)), sharey=False, squeeze=False)
    axes = axes[0]
    for axis, opponent in zip(axes, suites):
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
        axis.set_title(f"vs {environment.title(opponent)}", fontsize=10)
        axis.set_xlim(0, 100)
        axis.set_xlabel("% of games (black: 95 % interval of a sampled edge)")
        axis.invert_yaxis()
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False)
    figure.tight_layout(rect=(0, 0.12, 1, 1))  # the legend sits below the plots, never over a bar
    return figure


def plot_outcomes(evals: dict, environment: Environment, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = outcome_figure(evals, environment)
    figure.savefig(path, dpi=110, format="png")  # the path may be a temporary name without .png
    plt.close(figure)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def turns_section(played: dict[str, tuple[pl.DataFrame, pl.DataFrame]], path: Path) -> list[str]:
    """For an environment without its own: how long each exactly evaluated student's episodes last, by outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["## How long the students' episodes last", "", "`report_lines.png` draws it.", ""]
    figure, axes = plt.subplots(1, max(1, len(played)), figsize=(4.5 * max(1, len(played)), 3), squeeze=False)
    for axis, (model, (games, _)) in zip(axes[0], played.items()):
        suites = games["opponent"].n_unique()  # each suite's lines sum to probability 1: the bars average the suites
        turns = sorted(set(games["turns"].to_list()))
        bottom = [0.0] * len(turns)
        for outcome, colour in OUTCOME_COLOURS.items():
            share = [100 * float(games.filter((pl.col("turns") == t) & (pl.col("outcome") == outcome))["probability"].sum()) / suites for t in turns]
            axis.bar(turns, share, bottom=bottom, color=colour, label=outcome)
            bottom = [a + b for a, b in zip(bottom, share)]
        axis.set_title(f"{model}: turns per episode, suites averaged", fontsize=10)
        axis.set_xlabel("assistant turns")
        axis.set_ylabel("% of episodes")
        mean = float((games["probability"] * games["turns"]).sum()) / suites
        lines.append(f"- **{model}**: {mean:.2f} turns per episode on average, over {games.height} lines")
    if played:
        axes[0][0].legend(frameon=False, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")  # the path may be a temporary name without .png
    plt.close(figure)
    return [*lines, ""]
