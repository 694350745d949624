"""Every benchmark runs, at a tiny size, so none can rot unnoticed; the figures themselves are not judged here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
@pytest.mark.parametrize("script, args", [("rollouts.py", ["--games", "8", "--delay", "0"]), ("generation.py", ["--games", "4"])])
def test_benchmark_runs_and_prints_its_figures(script, args, tiny_model_dir, tmp_path):
    extra = ["--model", str(tiny_model_dir)] if script == "generation.py" else []
    result = subprocess.run([sys.executable, str(BENCH / script), *args, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "games/s" in result.stdout


@pytest.mark.slow
def test_arithmetic_benchmark_prints_the_same_hashes_on_one_and_two_threads(tmp_path):
    """Portable arithmetic does not depend on the thread count; --native is what it replaces."""
    hashes = []
    for threads in ("1", "2"):
        result = subprocess.run(
            [sys.executable, str(BENCH / "arithmetic.py"), "--threads", threads, "--steps", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr
        hashes.append([line for line in result.stdout.splitlines() if ": " in line and "seconds" not in line])
    assert len(hashes[0]) == 6 and hashes[0] == hashes[1]


@pytest.mark.slow
def test_rl_decisions_compares_two_evaluated_students(tiny_sft_dir, tmp_path):
    from sftboot.envs import builtin
    from sftboot.evaluation.run import evaluate, load_student_policy

    evaluation = evaluate(builtin("tictactoe", max_turns=5), load_student_policy(str(tiny_sft_dir), 16), ["random", "optimal"], games=1, seed=0, batch_size=64)
    for name in ("sft", "rl"):  # the same student twice: nothing may count as flipped
        evaluation.save(tmp_path / "data" / "eval" / name)
        (tmp_path / "models").mkdir(exist_ok=True)
        (tmp_path / "models" / name).symlink_to(tiny_sft_dir)
    (tmp_path / "params.yaml").write_text((BENCH.parent / "params.yaml").read_text())
    command = [sys.executable, str(BENCH / "rl_decisions.py"), "--opponents", "1-1", "--games", "4"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    cells = [line.split("┆") for line in result.stdout.split("0. Losses")[1].split("1. Flips")[0].splitlines() if "┆" in line]
    losses = [row for row in cells if row[2].strip().replace(".", "", 1).isdigit()]  # data rows, not the names and types
    assert losses and all(row[2].strip() == row[4].strip() for row in losses)  # the same student: the same reward lost at every kind of position
    flips = result.stdout.split("1. Flips")[1].split("2. Tactics")[0]
    assert "optimal" in flips and "random" in flips
    assert "rl answers otherwise at 0 of " in flips
    assert "p 1.0-1.0: win chances a game" in result.stdout


@pytest.mark.slow
def test_sft_tactics_prints_the_teachers_answer_probability_as_sft_trains(tiny_model_dir, sft_records, tmp_path):
    (tmp_path / "data/sft").mkdir(parents=True)
    (tmp_path / "data/sft/train.jsonl").write_text("".join(json.dumps(record) + "\n" for record in sft_records))
    (tmp_path / "params.yaml").write_text((BENCH.parent / "params.yaml").read_text())
    command = [sys.executable, str(BENCH / "sft_tactics.py"), "--steps", "2", "--every", "1", "--games", "12", "--base", str(tiny_model_dir)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("block >0.5\n")[1]  # the trainer's own log lines are printed between its rows
    rows = [line.split() for line in table.splitlines() if line[:6].strip().isdigit()]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    assert all(0 <= float(value) <= 1 for row in rows for value in row[1:]) and len(rows[0]) == 5  # win and block columns


def test_benchmarks_import_only_the_library():
    for path in BENCH.glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert not any("tests" in line or "conftest" in line or "sys.path" in line for line in imports), path.name
