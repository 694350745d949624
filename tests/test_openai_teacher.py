"""The OpenAI-compatible teacher against a real local HTTP server that misbehaves on purpose."""

import json
import re
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
from conftest import free_port, run_stage, set_params, wait_until_serving

from sftboot.core.config import defaults
from sftboot.core.errors import UserError
from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin
from sftboot.policies.fake_openai import FakeOpenAI
from sftboot.policies.openai_chat import OpenAIChatPolicy

SENTINEL_KEY = "sk-sentinel-4f1d9c0e7b"


def _first_free_cell(messages: list[dict]) -> str:
    """The fake server's legal tic-tac-toe answer: the first cell the last message lists as available."""
    cells = re.search(r"Available positions: \[([\d, ]*)\]", messages[-1]["content"]).group(1)
    return f"<think>first free cell</think><move>{cells.split(',')[0].strip()}</move>"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("SFTBOOT_TEST_KEY", SENTINEL_KEY)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Retries wait milliseconds, not the half seconds a real server is given; a server's Retry-After is still honoured."""
    import openai._base_client

    import sftboot.policies.openai_chat as openai_chat

    monkeypatch.setattr(openai_chat, "NOT_COMPLETION_BACKOFF_S", 0.01)
    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.01)


def _policy(server: FakeOpenAI, **overrides) -> OpenAIChatPolicy:
    settings = dict(base_url=server.base_url, model="fake", api_key_env="SFTBOOT_TEST_KEY", timeout_s=1.0, max_retries=2)
    return OpenAIChatPolicy(defaults("teacher.openai", **(settings | overrides)))


def _one_reply(policy: OpenAIChatPolicy) -> str:
    specs = game_specs(1, seed=0, p_min=1.0, p_max=1.0)
    from sftboot.envs.tictactoe.game import TicTacToeEnv

    return policy.respond([TicTacToeEnv(specs[0]).messages], [specs[0].seed])[0].text


def test_retries_429_honouring_retry_after_then_500():
    with FakeOpenAI(_first_free_cell, faults=["429", "500"]) as server:
        started = time.perf_counter()
        text = _one_reply(_policy(server))
        assert "<move>" in text
        assert len(server.requests) == 3
        assert time.perf_counter() - started >= 1.0  # waited the server's Retry-After: 1


def test_a_hang_past_the_timeout_is_retried():
    with FakeOpenAI(_first_free_cell, faults=["hang"], hang_s=2.0) as server:
        assert "<move>" in _one_reply(_policy(server, timeout_s=0.5))
        assert len(server.requests) == 2


@pytest.mark.parametrize("fault", ["badjson", "empty", "drop"])
def test_a_reply_that_is_not_a_completion_is_retried_not_played(fault):
    with FakeOpenAI(_first_free_cell, faults=[fault, fault]) as server:
        games = play_games(builtin("tictactoe", max_turns=5), _policy(server), game_specs(1, 0, 1.0, 1.0), batch_size=1)
    assert games["invalid_moves"][0] == 0  # every move played was the model's, and legal
    kind = {"badjson": "not_json", "empty": "no_choices", "drop": "no_response"}[fault]
    assert games["api"][0][kind] == 2 and sum(games["api"][0].values()) == 2


@pytest.mark.parametrize("fault", ["null", "garbage"])
def test_what_the_model_returned_is_game_data_even_when_useless(fault):
    with FakeOpenAI(_first_free_cell, faults=[fault] * 50) as server:
        games = play_games(builtin("tictactoe", max_turns=5), _policy(server, max_retries=0), game_specs(2, 0, 1.0, 1.0), batch_size=2)
    assert games["invalid_moves"].min() > 0
    assert (games["reward_invalid"] == -0.1).all()
    if fault == "null":
        assert all(api["null_content"] == api["empty_content"] == turns for api, turns in zip(games["api"], games["turns"]))


def test_not_a_completion_past_the_retries_stops_with_a_clear_error():
    with FakeOpenAI(_first_free_cell, faults=["badjson"] * 10) as server:
        with pytest.raises(UserError, match="3 replies in a row .* were not completions.*rerun to resume"):
            _one_reply(_policy(server))


def test_split_off_reasoning_is_played_as_thinking_and_counted():
    with FakeOpenAI(_first_free_cell, faults=["reasoning"]) as server:
        games = play_games(builtin("tictactoe", max_turns=5), _policy(server), game_specs(1, 0, 1.0, 1.0), batch_size=1)
    first = next(m["content"] for m in games["messages"][0] if m["role"] == "assistant")
    assert first.startswith("<think>first free cell</think><move>")
    assert games["api"][0]["reasoning_tokens"] == 4 and games["well_formed_turns"][0] == games["turns"][0]


def test_sampling_options_reach_the_server():
    with FakeOpenAI(_first_free_cell) as server:
        _one_reply(_policy(server, top_p=0.9, reasoning_effort="low", extra_body={"top_k": 20}))
    assert {key: server.requests[0][key] for key in ("top_p", "reasoning_effort", "top_k")} == {"top_p": 0.9, "reasoning_effort": "low", "top_k": 20}
    with FakeOpenAI(_first_free_cell) as server:
        _one_reply(_policy(server))
    assert not {"top_p", "reasoning_effort", "top_k"} & set(server.requests[0])


def test_outage_past_retries_stops_with_a_clear_error():
    with FakeOpenAI(_first_free_cell, faults=["500"] * 10) as server:
        with pytest.raises(UserError, match="failed after 2 retries.*rerun to resume"):
            _one_reply(_policy(server))


def test_missing_or_rejected_key_is_named(monkeypatch):
    monkeypatch.delenv("SFTBOOT_TEST_KEY")
    with FakeOpenAI(_first_free_cell) as server:
        with pytest.raises(UserError, match="SFTBOOT_TEST_KEY is not set"):
            _policy(server)
    monkeypatch.setenv("SFTBOOT_TEST_KEY", "wrong")
    with FakeOpenAI(_first_free_cell, api_key=SENTINEL_KEY) as server:
        with pytest.raises(UserError, match="rejected the key in SFTBOOT_TEST_KEY"):
            _one_reply(_policy(server))


def test_usage_and_cost_are_recorded():
    with FakeOpenAI(_first_free_cell) as server:
        policy = _policy(server, price_input_per_m=1.0, price_output_per_m=10.0)
        games = play_games(builtin("tictactoe", max_turns=8), policy, game_specs(3, 0, 1.0, 1.0), batch_size=3)
    turns = int(games["turns"].sum())
    assert int(games["prompt_tokens"].sum()) == 100 * turns
    assert float(games["cost_usd"].sum()) == pytest.approx(turns * (100 * 1.0 + 10 * 10.0) / 1e6)


def _openai_project(project, server, games=24, concurrency=4):
    set_params(
        project,
        teacher={
            "policy": "openai",
            "games": games,
            "openai": {"base_url": server.base_url, "model": "fake", "api_key_env": "SFTBOOT_TEST_KEY", "concurrency": concurrency},
        },
    )


def _journal_rows(project):
    rows = []
    for path in (project / ".sftboot/journal/teacher").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def test_killed_run_resumes_without_asking_again(project, tmp_path_factory):
    reference_dir = tmp_path_factory.mktemp("uninterrupted")
    (reference_dir / "stages").symlink_to(project / "stages")
    (reference_dir / "params.yaml").write_bytes((project / "params.yaml").read_bytes())
    with FakeOpenAI(_first_free_cell, delay_s=0.02) as server:
        _openai_project(project, server)
        _openai_project(reference_dir, server)
        assert run_stage(reference_dir, "teacher").returncode == 0
        uninterrupted = pl.read_parquet(reference_dir / "data/rollouts/teacher.parquet")

        server.requests.clear()
        process = subprocess.Popen([sys.executable, "stages/teacher.py"], cwd=project, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(_journal_rows(project)) < 8 and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        finished = {row["game_id"]: row["turns"] for row in _journal_rows(project)}
        assert 8 <= len(finished) < 24

        server.requests.clear()
        result = run_stage(project, "teacher")
        assert result.returncode == 0, result.stderr
        expected_requests = int(uninterrupted.filter(~pl.col("game_id").is_in(list(finished)))["turns"].sum())
        assert len(server.requests) == expected_requests  # nothing finished was asked again

    resumed = pl.read_parquet(project / "data/rollouts/teacher.parquet")
    assert resumed.equals(uninterrupted)
    assert not list((project / ".sftboot/journal/teacher").glob("*.jsonl"))


def test_a_server_failing_30_percent_of_the_time_costs_no_game_and_every_fault_is_counted(project):
    import random

    rng = random.Random(0)
    kinds = ["429", "500", "hang", "drop", "badjson", "empty", "null"]
    faults = [rng.choice(kinds) if rng.random() < 0.3 else None for _ in range(2000)]
    with FakeOpenAI(_first_free_cell, faults=faults, hang_s=1.5) as server:
        _openai_project(project, server, games=30, concurrency=8)
        set_params(project, teacher={"openai": {"timeout_s": 1.0, "max_retries": 6}})
        result = run_stage(project, "teacher")
        served = faults[: len(faults) - len(server.faults)]
    assert result.returncode == 0, result.stderr
    games = pl.read_parquet(project / "data/rollouts/teacher.parquet")
    assert games.height == 30
    # only null content, the model's own (empty) answer, costs a move; server failures cost nothing
    assert (games["invalid_moves"] == pl.Series([api["null_content"] for api in games["api"]])).all()
    counted = json.loads((project / "metrics/teacher.json").read_text())["api"]
    injected = {kind: served.count(kind) for kind in kinds}
    assert counted["rate_limited"] == injected["429"] and counted["server_errors"] == injected["500"]
    assert counted["no_response"] == injected["hang"] + injected["drop"]
    assert counted["not_json"] == injected["badjson"] and counted["no_choices"] == injected["empty"]
    assert counted["null_content"] == injected["null"] > 0


def test_api_key_is_never_written(project):
    with FakeOpenAI(_first_free_cell) as server:
        _openai_project(project, server, games=4)
        result = run_stage(project, "teacher")
    assert result.returncode == 0, result.stderr
    assert SENTINEL_KEY not in result.stdout + result.stderr
    for path in project.rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path


@pytest.fixture
def served_model(tiny_sft_dir):
    """`transformers serve` on 127.0.0.1, serving the tiny SFT'd student from its folder."""
    import os
    import shutil

    port = free_port()
    command = [shutil.which("transformers"), "serve", str(tiny_sft_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    server = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", server, 120)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_sft_dir)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_teacher_stage_against_transformers_serve(project, served_model):
    base_url, model = served_model
    set_params(
        project,
        env={"tictactoe": {"max_turns": 5}},
        teacher={
            "policy": "openai",
            "games": 4,
            "openai": {"base_url": base_url, "model": model, "api_key_env": "SFTBOOT_TEST_KEY", "max_tokens": 24, "concurrency": 2},
        },
    )
    result = run_stage(project, "teacher")
    assert result.returncode == 0, result.stderr
    games = pl.read_parquet(project / "data/rollouts/teacher.parquet")
    assert games.height == 4 and (games["completion_tokens"] > 0).all() and (games["prompt_tokens"] > 0).all()
    assert games["policy_id"][0] == f"openai:{model}@{base_url}"
    metrics = json.loads((project / "metrics/teacher.json").read_text())
    assert metrics["games"] == 4 and metrics["completion_tokens"] == int(games["completion_tokens"].sum())


def test_sftboot_eval_scores_a_served_model(served_model, tmp_path):
    base_url, model = served_model
    command = ["sftboot", "eval", "--model", f"openai:{model}", "--base-url", base_url, "--api-key-env", "SFTBOOT_TEST_KEY"]
    result = subprocess.run(
        [*command, "--opponent", "random", "--games", "4", "--api-max-tokens", "24", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout[result.stdout.index("{") :])
    assert metrics["random"]["kind"] == "sampled" and metrics["random"]["games"] == 4 and metrics["random"]["completion_tokens"] > 0
