"""The data half of the pipeline through the real `dvc` CLI, in a fresh repository."""

import pytest
from conftest import dvc, set_params


@pytest.mark.slow
def test_same_params_give_the_same_data(repo, tmp_path):
    set_params(repo, teacher={"games": 30}, validate={"min_examples": 5})
    dvc(repo, "repro", "validate")
    first = (repo / "data/sft/train.jsonl").read_bytes()
    dvc(repo, "repro", "--force", "validate")
    assert (repo / "data/sft/train.jsonl").read_bytes() == first
