"""Summary figures over played games, shared by the teacher stage and every evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a rate, as fractions; honest at 0 % and 100 % unlike the normal one."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(successes: int, trials: int) -> dict:
    low, high = wilson_interval(successes, trials)
    return {
        "pct": round(100 * successes / trials, 2) if trials else 0.0,
        "ci95_low": round(100 * low, 2),
        "ci95_high": round(100 * high, 2),
    }


@dataclass(frozen=True)
class Metric:
    """A figure every evaluation reports: sampled (a rate with its Wilson interval) and exact (probability-weighted)."""

    of: Callable[[pl.DataFrame], pl.Series]  # per game: whether it counts (a share of games), a count of answers, or a value
    kind: Literal["games", "answers", "mean"]  # a share of the games, a share of all answers, or a mean per game
    digits: tuple[int, int] = (2, 4)  # a mean's rounding, sampled and exact


# One registry for the teacher stage, sampled and exact evaluation: a new figure is one entry.
METRICS: dict[str, Metric] = {
    "win": Metric(lambda games: games["outcome"] == "win", "games"),
    "draw": Metric(lambda games: games["outcome"] == "draw", "games"),
    "loss": Metric(lambda games: games["outcome"] == "loss", "games"),
    "format": Metric(lambda games: games["well_formed_turns"], "answers"),
    "answers_at_cap": Metric(lambda games: games["answers_at_cap"], "answers"),
    "invalid_games": Metric(lambda games: games["invalid_moves"] > 0, "games"),
    "mean_reward": Metric(lambda games: games["reward_total"], "mean", (4, 4)),
    "mean_turns": Metric(lambda games: games["turns"], "mean", (3, 4)),
    "completion_tokens_per_game": Metric(lambda games: games["completion_tokens"], "mean", (1, 2)),
}


def figures(games: pl.DataFrame, weight: pl.Series | None = None) -> dict:
    """Every metric over `games`: counted, with Wilson intervals, when sampled (no `weight`); weighted by each line's
    probability when exact (rates to four decimals, no interval)."""
    if weight is None:
        count, answers = games.height, int(games["turns"].sum())
    else:
        answers = float((weight * games["turns"]).sum())
    result = {}
    for name, metric in METRICS.items():
        values = metric.of(games)
        if weight is None:
            total = {"games": count, "answers": answers}.get(metric.kind)
            result[name] = _rate(int(values.sum()), total) if total is not None else round(float(values.mean()), metric.digits[0])
        elif metric.kind == "games":
            result[name] = {"pct": round(100 * float((weight * values.cast(pl.Float64)).sum()), 4)}
        elif metric.kind == "answers":
            result[name] = {"pct": round(100 * float((weight * values).sum()) / answers, 4)}
        else:
            result[name] = round(float((weight * values).sum()), metric.digits[1])
    return result


def summarize(games: pl.DataFrame) -> dict:
    """Sampled games: every metric with its interval, and what the games cost."""
    return (
        {"games": games.height}
        | figures(games)
        | {
            "prompt_tokens": int(games["prompt_tokens"].sum()),
            "completion_tokens": int(games["completion_tokens"].sum()),
            "cost_usd": round(float(games["cost_usd"].sum()), 6),
        }
    )


def api_counts(games: pl.DataFrame) -> dict:
    """An API teacher's retries, faults and reasoning tokens, summed over the games."""
    return {name: int(value) for name, value in games["api"].struct.unnest().sum().row(0, named=True).items()}
