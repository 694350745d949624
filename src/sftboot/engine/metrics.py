"""Summary figures over played games, shared by the teacher stage and every evaluation."""

from __future__ import annotations

import math

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


def summarize(games: pl.DataFrame) -> dict:
    """Outcome rates, format and invalid-move rates (each with a Wilson 95 % interval), rewards and cost."""
    count = games.height
    turns = int(games["turns"].sum())
    return {
        "games": count,
        "win": _rate(int((games["outcome"] == "win").sum()), count),
        "draw": _rate(int((games["outcome"] == "draw").sum()), count),
        "loss": _rate(int((games["outcome"] == "loss").sum()), count),
        "format": _rate(int(games["well_formed_turns"].sum()), turns),
        "answers_at_cap": _rate(int(games["answers_at_cap"].sum()), turns),
        "invalid_games": _rate(int((games["invalid_moves"] > 0).sum()), count),
        "mean_reward": round(float(games["reward_total"].mean()), 4),
        "mean_turns": round(turns / count, 3),
        "completion_tokens_per_game": round(float(games["completion_tokens"].mean()), 1),
        "prompt_tokens": int(games["prompt_tokens"].sum()),
        "completion_tokens": int(games["completion_tokens"].sum()),
        "cost_usd": round(float(games["cost_usd"].sum()), 6),
    }


def api_counts(games: pl.DataFrame) -> dict:
    """An API teacher's retries, faults and reasoning tokens, summed over the games."""
    return {name: int(value) for name, value in games["api"].struct.unnest().sum().row(0, named=True).items()}
