"""From played games to SFT data: the outcome filter and the TRL conversational records."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sftboot.core.errors import UserError

# Checked in this order; a dropped game is counted under the first reason that applies.
DROP_REASONS = ("invalid_move", "malformed", "outcome", "duplicate")


def read_games(path: Path | str) -> pl.DataFrame:
    """Load a games parquet file, or say which stage to rerun when it is missing or unreadable."""
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise UserError(f"{path} is missing or not a readable parquet file ({error}); rerun the stage that writes it") from None


def drop_reason(games: pl.DataFrame, keep: list[str], deduplicate: bool) -> pl.Series:
    """Why each game would be dropped, or null for a game worth learning from."""
    return games.select(
        pl.when(pl.col("invalid_moves") > 0)
        .then(pl.lit("invalid_move"))
        .when(pl.col("well_formed_turns") < pl.col("turns"))
        .then(pl.lit("malformed"))
        .when(~pl.col("outcome").is_in(keep))
        .then(pl.lit("outcome"))
        .when(pl.lit(deduplicate) & pl.col("messages").is_first_distinct().not_())
        .then(pl.lit("duplicate"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("drop_reason")
    ).to_series()


def filter_games(games: pl.DataFrame, keep: list[str], deduplicate: bool) -> tuple[pl.DataFrame, dict]:
    """Keep fully well-formed games with no invalid move whose outcome is in `keep`.

    A sampled teacher replays its favourite lines in many games, and those copies are what tells
    the student which move is the teacher's habit and which a slip, so they are kept by default.
    `deduplicate` keeps each conversation once, for a deterministic teacher (temperature 0) whose
    copies would only over-weight a few lines.
    """
    reasons = drop_reason(games, keep, deduplicate)
    kept = games.filter(reasons.is_null())
    counts = {reason: int((reasons == reason).sum()) for reason in DROP_REASONS}
    summary = {"games": games.height, "kept": kept.height, "dropped": games.height - kept.height, "dropped_by_reason": counts}
    return kept, summary


def sft_records(games: pl.DataFrame) -> list[dict]:
    """TRL conversational records; the closing environment message teaches nothing and is dropped."""
    records = []
    for messages in games["messages"].to_list():
        while messages and messages[-1]["role"] != "assistant":
            messages = messages[:-1]
        records.append({"messages": messages})
    return records
