"""`compute.processes: 2` runs sft and rl as two data-parallel processes (accelerate launch, gloo on the CPU)."""

import json

import pytest
from conftest import dvc, snapshot_repo

from sftboot.training.student import load_student


@pytest.mark.slow
def test_two_processes_share_every_step_and_only_the_first_writes(tmp_path):
    repo = snapshot_repo(tmp_path / "repo")
    overrides = ["profile=micro", "compute.processes=2", "rl.steps=2", "rl.games_per_step=8", "rl.num_generations=2"]
    dvc(repo, "exp", "run", *[arg for override in overrides for arg in ("-S", override)], "evaluate@rl")  # every stage RL needs
    rl = json.loads((repo / "metrics/rl.json").read_text())
    assert rl["processes"] == 2 and rl["steps"] == 2
    assert rl["games"] == 2 * 8  # each step played rl.games_per_step games in all, half in each process
    assert json.loads((repo / "metrics/sft.json").read_text())["processes"] == 2
    rewards = (repo / "metrics/rl/plots/metrics/reward.tsv").read_text().splitlines()
    assert len(rewards) == 1 + 2  # one writer: a header and one line per step
    model, _ = load_student(repo / "models/rl")
    assert json.loads((repo / "metrics/eval/rl.json").read_text())["optimal"]["kind"] == "exact"
