"""The whole pipeline on the micro profile, through the real `dvc` CLI in fresh repositories:
profiles, reruns of only what a change touches, experiments, metrics, and remote storage."""

import json
import os
import re
import subprocess
import sys

import polars as pl
import pytest
import yaml
from conftest import commit, dvc, set_params, snapshot_repo

from sftboot.core.device import portable_env

STAGES = {
    "teacher",
    "filter",
    "validate",
    "base",
    "sft",
    "rl",
    "rl_without_sft",
    "evaluate@base",
    "evaluate@sft",
    "evaluate@rl",
    "evaluate@rl_without_sft",
    "evaluate_teacher",
    "eval_plan",
    "report",
}
# -S override -> (the stages it reaches (`dvc status`), stages allowed to rerun: those downstream of the change,
#                 a figure the change must move in `dvc metrics diff`). RL's override is its step count, not
#                 its learning rate: micro's four games a step may all score alike, and then a learning
#                 rate would leave every figure but the timing where it was.
RERUNS = {
    "teacher.games=44": (  # the teacher's evaluation plays eval.games games, so it stays
        {"teacher"},
        {"teacher", "filter", "validate", "sft", "rl", "evaluate@sft", "evaluate@rl", "report"},
        ("metrics/teacher.json", "games"),
    ),
    "filter.keep=[win]": (
        {"filter", "validate"},
        {"filter", "validate", "sft", "rl", "evaluate@sft", "evaluate@rl", "report"},
        ("metrics/filter.json", "kept"),
    ),
    "student.pretrain.steps=2": (
        {"base"},
        {"base", "sft", "rl", "rl_without_sft", "evaluate@base", "evaluate@sft", "evaluate@rl", "evaluate@rl_without_sft", "report"},
        ("metrics/base.json", "pretrain_steps"),
    ),
    "sft.learning_rate=0.002": ({"sft"}, {"sft", "rl", "evaluate@sft", "evaluate@rl", "report"}, ("metrics/sft.json", "final_loss")),
    "rl.steps=2": ({"rl", "rl_without_sft"}, {"rl", "rl_without_sft", "evaluate@rl", "evaluate@rl_without_sft", "report"}, ("metrics/rl.json", "steps")),
    # tic-tac-toe's greedy students are evaluated exactly: the plan stays, so the sampled games concern the teacher alone
    "eval.games=6": ({"eval_plan", "evaluate_teacher"}, {"eval_plan", "evaluate_teacher", "report"}, ("metrics/eval/teacher.json", "random.games")),
    "eval.max_tokens_per_turn=20": (  # the students' evaluations, and the RL runs that start where they lose
        {"evaluate@base", "evaluate@sft", "evaluate@rl", "evaluate@rl_without_sft"},
        {"evaluate@base", "evaluate@sft", "evaluate@rl", "evaluate@rl_without_sft", "rl", "rl_without_sft", "report"},
        ("metrics/eval/base.json", "random.completion_tokens_per_game"),
    ),
}
pytestmark = pytest.mark.slow  # every test here shares one micro run
# Where a param reaches several alike stages, the test reruns the one that writes its figure (the others' reruns
# would only repeat it): everything then out of date, and all below it, must still lie in `allowed`.
SAMPLE_RERUN = {"rl.steps=2": {"rl"}, "eval.max_tokens_per_turn=20": {"evaluate@base"}}
MODEL_FILES = ("data/rollouts/teacher.parquet", "data/sft/train.jsonl", "models/sft/model.safetensors", "models/rl/model.safetensors")


# What another CPU changes: capped instruction sets (torch then picks its best kernels itself) and threads.
OTHER_ARITHMETIC = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def _reset(repo) -> None:
    """Back to the committed micro baseline: `dvc exp run` applies its results to the workspace."""
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=repo, check=True)
    dvc(repo, "checkout", "--force")


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """A repository where `dvc exp run -S profile=micro` has run every stage, committed as the baseline."""
    repo = snapshot_repo(tmp_path_factory.mktemp("micro") / "repo")
    ran = _ran(dvc(repo, "exp", "run", "-S", "profile=micro").stdout)
    assert ran == STAGES
    commit(repo, "micro baseline")
    return repo


def test_micro_profile_runs_every_stage_and_a_second_repro_runs_nothing(micro):
    _reset(micro)
    params = (micro / "params.yaml").read_text()
    assert "games: 40" in params and "builtin:tiny" in params  # composed from conf/profile/micro.yaml
    report = (micro / "report.md").read_text()
    assert "Against the optimal opponent" in report and "| teacher |" in report and "| rl |" in report and "| rl − sft | optimal |" in report
    assert "| rl_without_sft |" in report and "| rl_without_sft − base | optimal |" in report and "- RL without SFT:" in report
    for name in ("base", "sft", "rl", "rl_without_sft"):  # greedy: every line, each with its probability
        metrics = json.loads((micro / f"metrics/eval/{name}.json").read_text())
        for opponent in ("random", "optimal"):
            lines = pl.read_parquet(micro / f"data/eval/{name}/games.parquet").filter(pl.col("opponent") == opponent)
            assert metrics[opponent]["kind"] == "exact" and metrics[opponent]["lines"] == lines.height >= 10
            assert lines["probability"].sum() == pytest.approx(1.0)
    teacher = json.loads((micro / "metrics/eval/teacher.json").read_text())
    assert teacher["random"]["kind"] == "sampled" and teacher["random"]["games"] == teacher["optimal"]["games"] == 8
    assert "| best possible | expectimax |" in report and "## Where the students lose" in report and (micro / "report_lines.png").exists()
    assert (micro / "metrics/sft/plots/metrics/loss.tsv").exists() and (micro / "metrics/rl/plots/metrics/reward.tsv").exists()
    from huggingface_hub import ModelCard

    assert json.loads((micro / "data/eval/plan.json").read_text()) == {"exact": True}
    for name in ("base", "sft", "rl", "rl_without_sft"):  # each checkpoint carries its model card, and the report completes it
        card = ModelCard.load(micro / f"models/{name}/README.md")
        assert card.data.library_name == "transformers" and card.data.license == "mit" and f"sftboot eval --model models/{name}" in card.text
        completed = ModelCard.load(micro / f"models/cards/{name}.md")
        scored = {(result.dataset_config, result.metric_type): result.metric_value for result in completed.data.eval_results}
        evaluation = json.loads((micro / f"metrics/eval/{name}.json").read_text())
        assert scored[("optimal", "draw")] == evaluation["optimal"]["draw"]["pct"] and "## Evaluation results" in completed.text
    assert json.loads((micro / "metrics/timings/rl.json").read_text())["seconds"] > 0
    assert not any("seconds" in path.read_text() for path in (micro / "metrics").glob("*.json"))  # clock time stays out of the metrics
    for name, model in (("sft", "models/sft"), ("teacher", "scripted")):  # the CLI's defaults are the project's params
        cli = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "eval", "--model", model, "--json"], cwd=micro, capture_output=True, text=True)
        assert cli.returncode == 0, cli.stderr
        stage = json.loads((micro / f"metrics/eval/{name}.json").read_text())
        assert json.loads(cli.stdout[cli.stdout.index("{") :]) == stage
    assert _ran(dvc(micro, "repro").stdout) == set()
    assert "up to date" in dvc(micro, "status").stdout

    shown = dvc(micro, "exp", "show", "--csv", "--drop", ".*", "--keep", "Experiment|^(rl|teacher)_").stdout
    header = shown.splitlines()[0]
    for column in ("rl_draw_vs_optimal", "teacher_draw_vs_optimal", "rl_win_vs_random", "rl_format", "rl_invalid_games"):
        assert column in header
    html = dvc(micro, "plots", "show", "-o", str(micro.parent / "plots")).stdout
    assert (micro.parent / "plots" / "index.html").exists(), html


def _set_param(repo, override: str) -> None:
    """Apply `key=value` to params.yaml, as `dvc exp run -S` does."""
    key, value = override.split("=")
    nested = yaml.safe_load(value)
    for part in reversed(key.split(".")):
        nested = {part: nested}
    set_params(repo, **nested)


def _out_of_date(repo) -> set[str]:
    """The stages `dvc status` names: those a change reaches directly, before any output moves."""
    status = dvc(repo, "status").stdout
    return {line.rstrip(":") for line in status.splitlines() if line.endswith(":") and not line.startswith((" ", "\t"))}


def _downstream(repo, stages: set[str]) -> set[str]:
    """The stages and every stage below them in `dvc dag`: all a rerun of them can reach."""
    edges = [re.findall(r'"([^"]+)"', line) for line in dvc(repo, "dag", "--dot").stdout.splitlines() if "->" in line]
    reached = set(stages)
    while grown := {after for before, after in edges if before in reached} - reached:
        reached |= grown
    return reached


@pytest.mark.parametrize("override", RERUNS)
def test_a_changed_section_reruns_only_what_lies_downstream(micro, override):
    """DVC reruns the stages a param reaches, then those whose inputs moved, and so on down; the test reruns the
    stages the param reaches (or one of alike ones), sees the figure move, and checks that all DVC would rerun
    next, and all below it, lies in `allowed`."""
    _reset(micro)
    must, allowed, (path, figure) = RERUNS[override]
    _set_param(micro, override)
    assert _out_of_date(micro) == must
    rerun = SAMPLE_RERUN.get(override, must)
    ran = _ran(dvc(micro, "repro", "--single-item", *sorted(rerun)).stdout)
    assert ran == rerun
    assert _downstream(micro, _out_of_date(micro)) <= allowed  # the stages whose inputs moved, and all below them
    # the experiment against the committed baseline: the changed key, and a figure it moved
    assert override.split("=")[0] in dvc(micro, "params", "diff", "HEAD").stdout
    diff = dvc(micro, "metrics", "diff", "HEAD", "--json").stdout
    assert figure in json.loads(diff).get(path, {}), diff


def test_the_teacher_price_and_transport_do_not_rerun_its_games(micro):
    """Settings that cannot change the games leave them cached: an API teacher is never paid twice for them."""
    _reset(micro)
    params = yaml.safe_load((micro / "params.yaml").read_text())
    untracked = {"price_input_per_m": 9.0, "price_output_per_m": 9.0, "concurrency": 1, "timeout_s": 5, "max_retries": 0, "api_key_env": "OTHER_KEY"}
    params["teacher"]["openai"] |= untracked
    (micro / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "up to date" in dvc(micro, "status").stdout
    params["teacher"]["openai"]["model"] = "another-model"  # a setting that changes the games does rerun them
    (micro / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert {"teacher:", "evaluate_teacher:"} <= set(dvc(micro, "status").stdout.split())


def test_report_code_change_reruns_only_the_report(micro):
    _reset(micro)
    with open(micro / "src/sftboot/evaluation/report.py", "a") as code:
        code.write("\n# touched\n")
    assert _out_of_date(micro) == {"report"}


def _outs(repo) -> dict[str, str]:
    """Every stage output and its md5, as dvc.lock records them."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}


def _holds_clock_time(path: str) -> bool:
    """Stage timings, the trainers' own runtime figures, and the report's table of them."""
    return path.startswith("metrics/timings/") or path in ("metrics/sft", "metrics/rl", "metrics/rl_without_sft", "report.md")


def test_other_kernels_and_threads_rewrite_every_output_byte_for_byte(micro):
    """Portable arithmetic: another instruction set and thread count retrain the same models, replay the same games
    and write the same evaluation; the same params write the same teacher games and SFT data; only files that hold
    clock time may differ. Rerun: every stage script that writes data or runs a model, once (rl_without_sft runs
    rl.py and the other evaluations evaluate.py again; the plan, the teacher's sampled evaluation and the report
    do no tensor arithmetic on data of their own)."""
    _reset(micro)
    before = _outs(micro)
    environment = {name: value for name, value in os.environ.items() if name not in portable_env()} | OTHER_ARITHMETIC
    rerun = ["teacher", "filter", "validate", "base", "sft", "rl", "evaluate@rl"]
    command = [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", *rerun]
    rerun = subprocess.run(command, cwd=micro, env=environment, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _outs(micro)
    assert after.keys() == before.keys()
    assert not {path for path in before if after[path] != before[path] and not _holds_clock_time(path)}
    assert {"data/rollouts/teacher.parquet", "data/sft/train.jsonl", "models/base", "models/rl", "data/eval/rl"} <= before.keys()


def test_a_bad_set_param_fails_the_experiment_with_the_config_error(micro):
    _reset(micro)
    failed = dvc(micro, "exp", "run", "-S", "profile=micro", "-S", "rl.learning_rate=-1", check=False)
    assert failed.returncode != 0
    assert "params.yaml: rl.learning_rate: Input should be greater than 0" in failed.stdout + failed.stderr
    unknown = dvc(micro, "exp", "run", "-S", "profile=micro", "-S", "rl.learning_rat=0.1", check=False)
    assert unknown.returncode != 0 and "rl.learning_rat" in unknown.stdout + unknown.stderr


def _round_trip(repo, name: str, remote_url: str, *modify: list[str]):
    """Push to the remote; a fresh clone pulls byte-identical data and models with nothing to rerun."""
    dvc(repo, "remote", "add", "-f", "-d", "storage", remote_url)
    for option in modify:
        dvc(repo, "remote", "modify", "storage", *option)
    commit(repo, "remote")
    dvc(repo, "push")
    clone = repo.parent / f"clone-{name}"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    dvc(clone, "pull")
    for path in MODEL_FILES:
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    assert "up to date" in dvc(clone, "status").stdout
    assert _ran(dvc(clone, "repro").stdout) == set()


def test_push_and_pull_through_a_local_folder_remote(micro):
    _reset(micro)
    _round_trip(micro, "local", str(micro.parent / "storage"))


def test_push_and_pull_through_an_s3_compatible_server(micro, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="sftboot")
        _reset(micro)
        _round_trip(micro, "s3", "s3://sftboot/cache", ["endpointurl", endpoint])
        stored = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="sftboot")
        assert stored["KeyCount"] > 0
    finally:
        server.stop()
