"""Every benchmark runs, at a tiny size, so none can rot unnoticed; the figures themselves are not judged here."""

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


def test_benchmarks_import_only_the_library():
    for path in BENCH.glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert not any("tests" in line or "conftest" in line or "sys.path" in line for line in imports), path.name
