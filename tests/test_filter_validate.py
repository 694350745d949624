"""The outcome filter and the great-expectations gate, against good and deliberately broken games."""

import json

import polars as pl
import pytest
from conftest import run_stage, set_params

from sftboot.core.io import write_parquet
from sftboot.data.dataset import filter_games, sft_records
from sftboot.data.validation import validate_games
from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin
from sftboot.envs.tictactoe.teacher import ScriptedTeacher

KEEP = ["win", "draw"]


@pytest.fixture(scope="module")
def games():
    return play_games(builtin("tictactoe", max_turns=8), ScriptedTeacher(0.8), game_specs(120, 0, 0.0, 1.0, 4), batch_size=128)


@pytest.fixture(scope="module")
def kept(games):
    return filter_games(games, KEEP, deduplicate=False)[0]


def test_filter_keeps_only_clean_wins_and_draws(games, kept):
    broken = games.with_columns(
        invalid_moves=pl.when(pl.col("game_id") == 0).then(1).otherwise(pl.col("invalid_moves")),
        well_formed_turns=pl.when(pl.col("game_id") == 1).then(0).otherwise(pl.col("well_formed_turns")),
    )
    kept_games, summary = filter_games(broken, KEEP, deduplicate=False)
    assert set(kept_games["outcome"]) <= set(KEEP)
    assert 0 not in kept_games["game_id"] and 1 not in kept_games["game_id"]
    assert summary["dropped_by_reason"]["invalid_move"] >= 1 and summary["dropped_by_reason"]["malformed"] >= 1
    assert summary["kept"] + summary["dropped"] == games.height == sum(summary["dropped_by_reason"].values()) + summary["kept"]
    assert set(filter_games(games, ["loss"], deduplicate=False)[0]["outcome"]) == {"loss"}


def test_filter_keeps_the_teachers_repeated_lines_unless_asked_to_deduplicate(games):
    doubled = pl.concat([games, games.with_columns(game_id=pl.col("game_id") + 1000)])
    kept_games, summary = filter_games(doubled, KEEP, deduplicate=False)
    assert summary["dropped_by_reason"]["duplicate"] == 0
    assert kept_games.height == 2 * filter_games(games, KEEP, deduplicate=False)[0].height
    kept_games, summary = filter_games(doubled, KEEP, deduplicate=True)
    assert summary["dropped_by_reason"]["duplicate"] >= games.height // 2
    assert kept_games["messages"].is_unique().all()


def test_clean_games_pass(kept):
    report = validate_games(kept, KEEP, deduplicated=False, min_examples=10, environment=builtin("tictactoe"))
    assert report["success"], [e for e in report["expectations"] if not e["success"]]


def _failures(frame, min_examples=10):
    report = validate_games(frame, KEEP, deduplicated=True, min_examples=min_examples, environment=builtin("tictactoe"))
    assert not report["success"]
    return {(e["expectation"], e["column"]): e for e in report["expectations"] if not e["success"]}


def _edit_messages(kept, game_index, edit):
    rows = kept.to_dicts()
    rows[game_index]["messages"] = edit(rows[game_index]["messages"])
    return pl.DataFrame(rows, schema=kept.schema)


def test_each_expectation_can_fail(kept):
    failures = _failures(kept.drop("capped"))
    assert ("expect_table_columns_to_match_set", None) in failures

    failures = _failures(kept.with_columns(game_id=pl.col("game_id").cast(pl.String)))
    assert ("expect_column_values_to_be_of_type", "game_id") in failures

    losing = kept.with_columns(outcome=pl.when(pl.col("game_id") == kept["game_id"][0]).then(pl.lit("loss")).otherwise("outcome"))
    failure = _failures(losing)[("expect_column_values_to_be_in_set", "outcome")]
    assert failure["example_game_ids"] == [kept["game_id"][0]]

    swapped = _edit_messages(kept, 3, lambda m: [m[0], m[2], m[1], *m[3:]])
    assert ("expect_column_values_to_be_in_set", "roles_alternate") in _failures(swapped)

    malformed = _edit_messages(kept, 4, lambda m: m[:2] + [{"role": "assistant", "content": m[2]["content"].replace("<think>", "")}] + m[3:])
    assert ("expect_column_values_to_be_in_set", "answers_well_formed") in _failures(malformed)

    def illegal(messages):
        answer = messages[2]["content"]
        cell = answer[answer.index("<move>") + 6]
        other = next(c for c in "012345678" if c != cell)
        return messages[:2] + [{"role": "assistant", "content": answer.replace(f"<move>{cell}", f"<move>{other}")}] + messages[3:]

    failure = _failures(_edit_messages(kept, 5, illegal))[("expect_column_values_to_be_in_set", "replays_legally")]
    assert failure["example_game_ids"] == [kept["game_id"][5]]

    duplicated = pl.concat([kept, kept.head(2).with_columns(game_id=pl.col("game_id") + 10_000)])
    assert ("expect_column_values_to_be_unique", "game_key") in _failures(duplicated)
    assert validate_games(duplicated, KEEP, deduplicated=False, min_examples=10, environment=builtin("tictactoe"))["success"]
    assert ("expect_column_values_to_be_unique", "game_id") in _failures(pl.concat([kept, kept.head(1)]))

    assert ("expect_table_row_count_to_be_between", None) in _failures(kept, min_examples=10_000)


def test_sft_records_end_on_the_assistant(kept):
    records = sft_records(kept)
    assert len(records) == kept.height
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"


def test_validate_stage_fails_loudly_and_writes_nothing(project, kept):
    corrupt = kept.with_columns(outcome=pl.lit("loss"))
    write_parquet(project / "data/sft/filtered.parquet", corrupt)
    set_params(project, validate={"min_examples": 5})
    result = run_stage(project, "validate")
    assert result.returncode == 2
    assert "validation failed" in result.stderr and "column outcome" in result.stderr and "game_id [" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "data/sft/train.jsonl").exists()


def test_validate_stage_names_an_unreadable_file(project):
    (project / "data/sft").mkdir(parents=True)
    (project / "data/sft/filtered.parquet").write_bytes(b"PAR1 not really")
    result = run_stage(project, "validate")
    assert result.returncode == 2 and "not a readable parquet file" in result.stderr


def test_validate_stage_writes_loadable_sft_data(project, kept):
    import datasets

    write_parquet(project / "data/sft/filtered.parquet", kept)
    set_params(project, validate={"min_examples": 5})
    assert run_stage(project, "validate").returncode == 0
    dataset = datasets.load_dataset("json", data_files=str(project / "data/sft/train.jsonl"))["train"]
    assert dataset.num_rows == kept.height and dataset.column_names == ["messages"]
    report = json.loads((project / "metrics/validate.json").read_text())
    assert report["success"] and all(e["success"] for e in report["expectations"])
