"""The data half of the pipeline through the real `dvc` CLI, in a fresh repository."""

import json

from conftest import dvc, set_params


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_repro_builds_validated_sft_data_and_reruns_only_what_changed(repo):
    set_params(repo, teacher={"games": 60}, validate={"min_examples": 10})
    first = dvc(repo, "repro", "validate")
    assert _ran(first.stdout) == ["teacher", "filter", "validate"]
    for path in ("data/rollouts/teacher.parquet", "data/sft/filtered.parquet", "data/sft/train.jsonl"):
        assert (repo / path).exists(), path
    teacher = json.loads((repo / "metrics/teacher.json").read_text())
    kept = json.loads((repo / "metrics/filter.json").read_text())
    assert teacher["games"] == 60 and kept["kept"] == sum(1 for _ in open(repo / "data/sft/train.jsonl"))

    assert _ran(dvc(repo, "repro", "validate").stdout) == []

    set_params(repo, filter={"keep": ["win"]})
    assert _ran(dvc(repo, "repro", "--dry", "validate").stdout) == ["filter", "validate"]
    assert _ran(dvc(repo, "repro", "validate").stdout) == ["filter", "validate"]
    assert json.loads((repo / "metrics/filter.json").read_text())["kept"] < kept["kept"]

    set_params(repo, teacher={"scripted": {"skill": 0.8}})
    assert _ran(dvc(repo, "repro", "validate").stdout) == ["teacher", "filter", "validate"]


def test_same_params_give_the_same_data(repo, tmp_path):
    set_params(repo, teacher={"games": 30}, validate={"min_examples": 5})
    dvc(repo, "repro", "validate")
    first = (repo / "data/sft/train.jsonl").read_bytes()
    dvc(repo, "repro", "--force", "validate")
    assert (repo / "data/sft/train.jsonl").read_bytes() == first
