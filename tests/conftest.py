import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# two pytest-xdist workers share the cores: torch's idle threads sleep instead of spinning on the other's core
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(items):
    """Modules with the most slow tests first: pytest-xdist hands out whole modules in this order
    (pyproject.toml), so the longest start first and the other worker takes the short ones meanwhile."""
    slow = collections.Counter(item.module.__name__ for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.module.__name__])


@pytest.fixture
def project(tmp_path):
    """A scratch copy of the project's stages and params, to run stage scripts in."""
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def set_params(folder: Path, **sections) -> None:
    """Merge nested overrides into folder/params.yaml."""
    path = folder / "params.yaml"
    params = yaml.safe_load(path.read_text())

    def merge(target: dict, changes: dict) -> None:
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    merge(params, sections)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def composed_params(overrides: list[str]) -> dict:
    """The params `dvc exp run -S OVERRIDE ...` composes from conf/ (Hydra)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return OmegaConf.to_container(compose("config", overrides=overrides))


def compose_params(folder: Path, overrides: list[str]) -> None:
    """folder/params.yaml as `dvc exp run -S OVERRIDE ...` writes it."""
    (folder / "params.yaml").write_text(yaml.safe_dump(composed_params(overrides), sort_keys=False))


def run_stages_in_process(folder: Path, *commands: str) -> None:
    """Stage commands (`evaluate sft`) run in dvc.yaml's order as `dvc repro` would, but in this process: for tests about what
    the stages do with a model rather than how DVC schedules them, so torch, transformers and TRL are imported once."""
    import runpy

    for command in commands:
        script, *args = command.split()
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            patch.setattr(sys, "argv", [f"stages/{script}.py", *args])
            runpy.run_path(f"stages/{script}.py", run_name="__main__")


def run_stage(folder: Path, stage: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"stages/{stage}.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def snapshot_repo(target: Path) -> Path:
    """A fresh git + DVC repository at `target` holding the project's files as they are now (committed or not)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    commit(target, "snapshot")
    return target


def commit(folder: Path, message: str) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", message], cwd=folder, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    return snapshot_repo(tmp_path / "repo")


def dvc(folder: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`dvc ARGS` in `folder`, through the CLI's own entry point in this process (a `dvc` process would import
    DVC anew, a second a call); its output, and its stages', captured at the file descriptors as a process's would be."""
    import logging

    from dvc.cli import main

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        # the stages DVC starts inherit this process's variables; DVC_TEST keeps DVC's --json output off colorama,
        # which would swap sys.stdout back to the stream of DVC's import
        for name, value in {"DVC_TEST": "1", **(env or {})}.items():
            patch.setenv(name, value)
        for handler in {handler for name in ("dvc", "dvc_objects", "dvc_data") for handler in logging.getLogger(name).handlers}:
            patch.setattr(handler, "stream", err if handler.level >= logging.WARNING else out)  # held since DVC's import
        with _descriptors_to(out, err):
            code = main(list(args))
        out.seek(0), err.seek(0)
        result = subprocess.CompletedProcess(["dvc", *args], code, out.read(), err.read())
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@contextlib.contextmanager
def _descriptors_to(out, err):
    """Point stdout and stderr, Python's streams and the descriptors that child processes inherit, at two files."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
            out.flush(), err.flush()
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        os.close(saved[0]), os.close(saved[1])


def micro_run_with_api_teacher(repo: Path, answer, settings: list[str], targets: list[str]) -> None:
    """`dvc exp run` of the micro profile for an environment with no scripted teacher: an API teacher (a local
    fake server answering with `answer(messages)`) and the builtin student."""
    from sftboot.policies.fake_openai import FakeOpenAI

    with FakeOpenAI(answer=answer) as server:
        overrides = [
            "profile=micro",
            "teacher.policy=openai",
            f"teacher.openai.base_url={server.base_url}",
            "teacher.openai.api_key_env=SFTBOOT_TEST_KEY",
            *settings,
        ]
        dvc(repo, "exp", "run", *[arg for override in overrides for arg in ("-S", override)], *targets, env={"SFTBOOT_TEST_KEY": "local"})


class Answering:
    """A policy for tests that answers each conversation with `answer(messages)`, as a stand-in LLM would."""

    def __init__(self, answer, policy_id: str) -> None:
        self.answer, self.policy_id = answer, policy_id

    def respond(self, conversations, seeds):
        from sftboot.engine.policy import Reply

        return [Reply(text=self.answer(messages)) for messages in conversations]


TINY = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2, "num_heads": 2}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny builtin student saved with save_pretrained, for tests to load through from_pretrained."""
    from sftboot.core.config import defaults
    from sftboot.envs import builtin
    from sftboot.training.student import materialize_base

    folder = tmp_path_factory.mktemp("tiny")
    materialize_base(builtin("tictactoe"), "builtin:tiny", defaults("student.builtin", **TINY), seed=0, out=folder)
    return folder


@pytest.fixture(scope="session")
def kept_games():
    """Scripted-teacher games kept by the filter stage, as data/sft/filtered.parquet holds them."""
    from sftboot.data.dataset import filter_games
    from sftboot.engine.environment import game_specs
    from sftboot.engine.rollout import play_games
    from sftboot.envs import builtin
    from sftboot.envs.tictactoe.teacher import ScriptedTeacher

    games = play_games(builtin("tictactoe", max_turns=8), ScriptedTeacher(0.9), game_specs(40, 0, 0.0, 1.0, 4), batch_size=64)
    return filter_games(games, ["win", "draw"], deduplicate=False)[0]


@pytest.fixture(scope="session")
def sft_records(kept_games):
    """SFT records from scripted-teacher games, as the validate stage writes them."""
    from sftboot.data.dataset import sft_records as records

    return records(kept_games)


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder `build` writes once per pytest run: the first pytest-xdist worker to ask builds it, the other waits and reuses it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock  # huggingface_hub's own lock

    run = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    folder = run / name
    with FileLock(str(run / f"{name}.lock")):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_sft_dir(tiny_model_dir, sft_records, tmp_path_factory):
    """The tiny student after a short SFT: it answers in format often enough for RL to see signal."""

    def build(folder: Path) -> None:
        from sftboot.core.config import defaults
        from sftboot.training.sft import train_sft
        from sftboot.training.student import load_student

        model, tokenizer = load_student(tiny_model_dir)
        params = defaults("sft", epochs=20, max_steps=-1, learning_rate=1e-2, batch_size=8, max_length=1024)
        trained, _ = train_sft(model, tokenizer, sft_records, params, seed=0, work_dir=tmp_path_factory.mktemp("sft"), callbacks=[])
        trained.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return _built_once(tmp_path_factory, "tiny_sft", build)


def free_port() -> int:
    """A loopback port nothing listens on, for a test server."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    """Return once `url` answers; fail if the server process ends or the time runs out."""
    import time
    import urllib.request

    deadline = time.time() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the server at {url} did not start") from None
            time.sleep(0.3)
