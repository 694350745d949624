"""The evaluation harness and its statistics."""

import json
import subprocess
import sys

import polars as pl
import pytest

from sftboot.engine.metrics import summarize, wilson_interval
from sftboot.envs import builtin
from sftboot.envs.tictactoe.teacher import ScriptedTeacher
from sftboot.evaluation.run import evaluate


def test_wilson_interval_known_values():
    low, high = wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = wilson_interval(0, 100)
    assert low == 0.0 and round(high, 4) == 0.037
    low, high = wilson_interval(100, 100)
    assert round(low, 4) == 0.963 and high == 1.0


def test_summary_rates_on_crafted_games():
    games = pl.DataFrame(
        {
            "outcome": ["win", "win", "draw", "loss"],
            "turns": [3, 4, 5, 2],
            "well_formed_turns": [3, 4, 4, 0],
            "invalid_moves": [0, 0, 1, 2],
            "reward_total": [1.2, 1.2, 0.56, -0.1],
            "completion_tokens": [30, 40, 50, 20],
            "answers_at_cap": [0, 1, 0, 0],
            "prompt_tokens": [0, 0, 0, 0],
            "cost_usd": [0.0, 0.0, 0.0, 0.0],
        }
    )
    summary = summarize(games)
    assert summary["win"]["pct"] == 50.0 and summary["draw"]["pct"] == 25.0 and summary["loss"]["pct"] == 25.0
    assert summary["format"]["pct"] == round(100 * 11 / 14, 2)
    assert summary["answers_at_cap"]["pct"] == round(100 * 1 / 14, 2)
    assert summary["invalid_games"]["pct"] == 50.0
    assert summary["mean_turns"] == 3.5 and summary["completion_tokens_per_game"] == 35.0
    assert summary["win"]["ci95_low"] < 50 < summary["win"]["ci95_high"]


def test_scripted_teacher_through_the_harness():
    evaluation = evaluate(builtin("tictactoe", max_turns=8), ScriptedTeacher(1.0), ["random", "optimal"], games=100, seed=1, batch_size=100, exact=False)
    results = evaluation.metrics
    assert results["random"]["kind"] == "sampled" and evaluation.games.height == 200 and evaluation.moves.is_empty()
    assert results["optimal"]["draw"]["pct"] == 100.0
    assert results["random"]["loss"]["pct"] == 0.0 and results["random"]["win"]["pct"] > 80
    assert results["random"]["format"]["pct"] == 100.0


@pytest.mark.slow
def test_cli_eval_on_a_checkpoint_and_on_bad_input(tiny_model_dir):
    def run(*extra):
        command = [
            sys.executable,
            "-m",
            "sftboot.app.cli",
            "eval",
            "--model",
            str(tiny_model_dir),
            "--opponent",
            "random",
            "--max-tokens",
            "8",
            "--json",
            *extra,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout[result.stdout.index("{") :])["random"]

    exact = run()  # a greedy student: every line; the untrained one never moves, so one line per opening
    assert exact["kind"] == "exact" and exact["lines"] == 10 and exact["loss"]["pct"] == 100.0
    sampled = run("--sampled", "--games", "3")
    assert sampled["kind"] == "sampled" and sampled["games"] == 3 and sampled["loss"]["pct"] == 100.0
    missing = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "eval", "--model", "no/such/folder"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no model folder at no/such/folder" in missing.stderr and "Traceback" not in missing.stderr
    bad_flag = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "eval", "--model", "openai:any", "--concurrency", "0"], capture_output=True, text=True)
    assert bad_flag.returncode == 2 and "--concurrency: Input should be greater than or equal to 1" in bad_flag.stderr and "Traceback" not in bad_flag.stderr


def test_a_pipeline_model_missing_from_a_clone_is_named_not_fetched_from_the_hub(tmp_path):
    """`models/rl` before `dvc repro` or `dvc pull` is a folder to make, not a hub repository to download."""
    result = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "eval", "--model", "models/rl"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: no model folder at models/rl: a fresh clone has no models until `dvc repro` trains them or `dvc pull` fetches them "
        "(a hub model is named owner/name)"
    )


def test_cli_flags_are_refused_as_flags():
    def fails(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "sftboot.app.cli", *args], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        return result.stderr.strip()

    assert fails("eval", "--model", "scripted", "--env", "nosuchenv").startswith(
        "error: --env: no environment 'nosuchenv'; choose one of tictactoe, mastermind"
    )
    assert fails("eval", "--model", "openai:any", "--max-tokens", "24") == (
        "error: --max-tokens: a local model's budget per turn; an API model's budget, thinking included, is --api-max-tokens"
    )
    version = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("sftboot 0.")


def test_cli_eval_of_the_scripted_teacher_takes_its_skill_and_lookahead():
    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "sftboot.app.cli", "eval", "--model", "scripted", "--opponent", "optimal", "--games", "40", *extra],
            capture_output=True,
            text=True,
        )

    perfect = run("--skill", "1.0", "--lookahead", "1.0")
    assert perfect.returncode == 0, perfect.stderr
    assert "draw 100.0%" in perfect.stdout
    assert "draw 100.0%" not in run("--skill", "0.5", "--lookahead", "1.0").stdout
    assert "draw 100.0%" not in run("--skill", "1.0", "--lookahead", "0.0").stdout  # blind to forks
    bad = run("--skill", "2")
    assert bad.returncode == 2 and "--skill: Input should be less than or equal to 1 (got 2.0)" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_play_against_the_scripted_teacher():
    moves = "\n".join(str(cell) for cell in range(9) for _ in range(2)) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "sftboot.app.cli", "play", "scripted", "--game-seed", "4", "--show-thinking"], input=moves, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "<think>" in result.stdout and "model plays X at" in result.stdout
    assert any(ending in result.stdout for ending in ("The model wins.", "You win!", "A draw."))
