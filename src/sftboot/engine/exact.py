"""Exact evaluation of a deterministic policy: every line an episode can take, each with its probability.

A greedy student answers the same conversation the same way every time, so the only chance left is
the environment's. An environment whose chance all lies in the spec (Mastermind's secret) is played
once per spec; one that draws during the game (an opponent's random moves) expands its own branches.
Either way the outcome distribution itself comes back instead of a sample of it.
"""

from __future__ import annotations

import polars as pl

from sftboot.engine.metrics import METRICS, figures
from sftboot.engine.rollout import GAME_SCHEMA, play_games

LINE_SCHEMA = {"opponent": pl.String, "probability": pl.Float64} | GAME_SCHEMA
MOVE_SCHEMA = {
    "opponent": pl.String,
    "reach": pl.Float64,  # the probability that a game meets this position and the policy answers it
    "board": pl.String,  # the position the answer was given in, as the environment writes it
    "turn": pl.Int64,
    "history": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),  # the conversation the answer was given in
    "answer": pl.String,
    "cell": pl.Int64,  # null: the answer was no legal move
    "keeps_value": pl.Boolean,  # the move keeps the position's game value (win, draw or loss under best play)
    "regret": pl.Float64,  # expected outcome reward lost against this opponent, best play after
    "best_cells": pl.List(pl.Int64),
}


def summarize_lines(lines: pl.DataFrame, moves: pl.DataFrame) -> dict:
    """Exact rates: each line's outcome weighted by its probability; no interval, the count of lines instead."""
    weight = lines["probability"]
    legal = moves.filter(pl.col("cell").is_not_null())
    legal_reach = float(legal["reach"].sum())
    judged = {  # only environments that judge each move fill the moves frame
        "move_quality": {"pct": round(100 * float((legal["reach"] * legal["keeps_value"]).sum()) / legal_reach, 4) if legal_reach else 0.0},
        "reward_lost_to_moves": round(float((legal["reach"] * legal["regret"]).sum()), 6),
    }
    rates = figures(lines, weight)
    means = [name for name in rates if METRICS[name].kind == "mean"]
    return (
        {"kind": "exact", "lines": lines.height, "probability_total": round(float(weight.sum()), 9)}
        | {name: value for name, value in rates.items() if name not in means}
        | (judged if moves.height else {})
        | {name: rates[name] for name in means}
    )


def play_each_spec(environment, policy, suite: str, specs: list, batch_size: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every spec played once, each line weighted equally: exact when the spec holds all of the environment's chance."""
    played = play_games(environment, policy, specs, batch_size, description=f"{policy.policy_id} in {suite}, every spec")
    lines = played.with_columns(opponent=pl.lit(suite), probability=pl.lit(1 / played.height)).select(list(LINE_SCHEMA))
    return lines, pl.DataFrame(schema=MOVE_SCHEMA)
