"""The great-expectations suite that stands between filtered games and SFT data.

Checks that need the game rules (roles alternate, every answer well-formed, every move legal when
the game is replayed in the environment) are computed per game first, as boolean columns, so each
one becomes an expectation with its own failing rows in the report.
"""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import polars as pl

from sftboot.core.answer import is_well_formed
from sftboot.engine.environment import Environment, GameSpec
from sftboot.engine.rollout import GAME_SCHEMA

NESTED = ("messages", "moves", "api")  # list and struct columns, checked through the derived columns instead

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SCALAR_TYPES = {"game_id": "int64", "seed": "int64", "p": "float64", "outcome": "object", "turns": "int64", "invalid_moves": "int64"}
DERIVED_CHECKS = {
    "roles_alternate": "roles are an optional system message, then user and assistant alternating",
    "answers_well_formed": "every assistant turn is <think>…</think> then <move>…</move>",
    "replays_legally": "replaying the answers in the environment gives the same game with no illegal move",
}


def _roles_alternate(messages: list[dict]) -> bool:
    roles = [message["role"] for message in messages]
    roles = roles[1:] if roles[:1] == ["system"] else roles  # an environment without a system prompt (many Verifiers ones) opens with the user
    return len(roles) >= 2 and roles == ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))]


def _replays_legally(row: dict, environment: Environment) -> bool:
    answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    env = environment.replay(GameSpec(row["game_id"], row["seed"], row["p"]), answers)
    return env.invalid_moves == 0 and env.outcome == row["outcome"] and env.messages == row["messages"]


def _checks(row: dict, environment: Environment) -> dict:
    """The per-game checks; a row too broken to check fails them all."""
    try:
        messages = row["messages"]
        return {
            "roles_alternate": _roles_alternate(messages),
            "answers_well_formed": all(is_well_formed(m["content"]) for m in messages if m["role"] == "assistant"),
            "replays_legally": _replays_legally(row, environment),
            "game_key": hashlib.sha256(json.dumps(messages).encode()).hexdigest(),
        }
    except Exception:  # any malformation of the row itself is what these checks report
        return {name: False for name in DERIVED_CHECKS} | {"game_key": f"unreadable:{id(row)}"}


def checked_frame(games: pl.DataFrame, environment: Environment) -> pd.DataFrame:
    """The games' scalar columns plus one boolean column per rule check, for great-expectations."""
    checks = [_checks(row, environment) for row in games.iter_rows(named=True)]
    scalars = games.drop([c for c in NESTED if c in games.columns]).to_pandas()
    # pandas 3 gives text its own "str" dtype that great-expectations' type check does not know.
    text_columns = scalars.select_dtypes(include=["string", "object"]).columns
    scalars[text_columns] = scalars[text_columns].astype(object)
    return pd.concat([scalars, pd.DataFrame(checks, index=scalars.index)], axis=1)


def build_suite(keep: list[str], min_examples: int, deduplicated: bool):
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="sft_games")
    expected_columns = [c for c in GAME_SCHEMA if c not in NESTED] + [*DERIVED_CHECKS, "game_key"]
    suite.add_expectation(gx.expectations.ExpectTableColumnsToMatchSet(column_set=expected_columns, exact_match=True))
    for column, type_name in SCALAR_TYPES.items():
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeOfType(column=column, type_=type_name))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column="outcome", value_set=keep))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column="invalid_moves", value_set=[0]))
    for column in DERIVED_CHECKS:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=[True]))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="game_id"))
    if deduplicated:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="game_key"))
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=min_examples))
    return suite


def validate_games(games: pl.DataFrame, keep: list[str], deduplicated: bool, min_examples: int, environment: Environment) -> dict:
    """Run the suite; returns a JSON-able report with, for each failure, example game ids."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = checked_frame(games, environment)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("games")
        .add_dataframe_asset("filtered")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(build_suite(keep, min_examples, deduplicated), result_format="COMPLETE")
    expectations = []
    for outcome in result.results:
        config = outcome.expectation_config
        details = outcome.result or {}
        failing_rows = details.get("unexpected_index_list") or []
        game_ids = frame["game_id"] if "game_id" in frame else pd.Series(frame.index)
        expectations.append(
            {
                "expectation": config.type,
                "column": config.kwargs.get("column"),
                "meaning": DERIVED_CHECKS.get(config.kwargs.get("column"), ""),
                "success": bool(outcome.success),
                "observed": _plain(details.get("observed_value")),
                "unexpected_count": int(details.get("unexpected_count") or 0),
                "example_game_ids": [_plain(game_ids.iloc[i]) for i in failing_rows[:5]],
                "example_values": [_plain(v) for v in (details.get("partial_unexpected_list") or [])[:5]],
            }
        )
    return {"success": bool(result.success), "games": len(frame), "expectations": expectations}


def _plain(value):
    """numpy scalars and other oddities to JSON-able values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def describe_failures(report: dict) -> str:
    lines = [f"validation failed: {sum(not e['success'] for e in report['expectations'])} expectation(s) not met"]
    for item in report["expectations"]:
        if item["success"]:
            continue
        what = item["meaning"] or (f"column {item['column']}" if item["column"] else "table")
        line = f"- {item['expectation']} ({what})"
        if item["unexpected_count"]:
            line += f": {item['unexpected_count']} row(s), e.g. game_id {item['example_game_ids']}"
            if item["example_values"] and not item["meaning"]:
                line += f" with values {item['example_values']}"
        elif item["observed"] is not None:
            line += f": observed {item['observed']}"
        lines.append(line)
    return "\n".join(lines)
