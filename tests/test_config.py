"""Bad params stop a stage with one line naming the key, and no traceback."""

import subprocess
import sys

import pytest
from conftest import run_stage, set_params

from sftboot.core.config import load_params


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"teacher": {"gamez": 5}}, "params.yaml: unknown key 'teacher.gamez'; remove it or check its spelling"),
        ({"teacher": {"games": "many"}}, "params.yaml: teacher.games: Input should be a valid integer"),
        ({"teacher": {"games": 0}}, "params.yaml: teacher.games: Input should be greater than or equal to 1 (got 0)"),
        ({"teacher": {"scripted": {"skill": 1.5}}}, "params.yaml: teacher.scripted.skill: Input should be less than or equal to 1"),
        ({"teacher": {"policy": "gpt"}}, "params.yaml: teacher.policy: no teacher 'gpt'; choose one of scripted, openai"),
        ({"teacher": {"difficulty_min": 0.9, "difficulty_max": 0.1}}, "difficulty_min must be <= difficulty_max"),
        (
            {"rl": {"opponents": "range", "games_per_step": 32, "num_generations": 8, "num_groups": 8}},
            "num_groups (8) exceeds the GRPO groups per step (games_per_step / num_generations = 4)",
        ),
        ({"filter": {"keep": ["victory"]}}, "params.yaml: filter.keep.0: Input should be 'win', 'draw' or 'loss'"),
        ({"rl": {"reward_weights": {"invalid": -1}}}, "params.yaml: rl.reward_weights.invalid: Input should be greater than or equal to 0"),
        (
            {"compute": {"processes": 3}},
            "params.yaml: rl.games_per_step (32) must be a multiple of compute.processes x rl.num_generations (3 x 8), so each process plays whole GRPO groups",
        ),
        ({"compute": {"dtype": "int8"}}, "params.yaml: compute.dtype: Input should be 'auto', 'float32', 'bfloat16' or 'float16'"),
        (  # pretraining is the builtin student's stand-in for a hub model's; a real model would be trained on random games
            {"student": {"model": "Qwen/Qwen3-0.6B", "pretrain": {"steps": 200}}},
            "params.yaml: student.pretrain.steps: 200 pretrains the builtin student only, and Qwen/Qwen3-0.6B is pretrained already; set student.pretrain.steps: 0",
        ),
    ],
)
def test_bad_params_fail_with_one_line(project, change, expected):
    set_params(project, **change)
    result = run_stage(project, "teacher")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (project / "data").exists()


def test_a_stage_refuses_arguments_instead_of_running(project):
    """`python stages/sft.py --help` once trained a model; a stage's settings are its params."""
    helped = subprocess.run([sys.executable, "stages/sft.py", "--help"], cwd=project, capture_output=True, text=True)
    assert helped.returncode == 0 and helped.stdout.startswith("Stage `sft`") and "dvc repro sft" in helped.stdout
    refused = subprocess.run([sys.executable, "stages/teacher.py", "--games", "5"], cwd=project, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.strip() == "error: stages/teacher.py takes no arguments (got: --games 5); it reads params.yaml"
    assert not (project / "models").exists() and not (project / "data").exists()


def test_missing_api_key_is_a_one_line_error(project):
    set_params(project, teacher={"policy": "openai", "openai": {"api_key_env": "SFTBOOT_NO_SUCH_KEY"}})
    result = run_stage(project, "teacher")
    assert result.returncode == 2
    assert "SFTBOOT_NO_SUCH_KEY is not set" in result.stderr and "Traceback" not in result.stderr


def test_committed_params_are_valid():
    from conftest import ROOT

    params = load_params(ROOT / "params.yaml")
    assert params.teacher.policy == "scripted"


def test_every_profile_composes_to_valid_params_and_default_is_params_yaml():
    """conf/profile/*.yaml are what `dvc exp run -S profile=...` composes; each must pass the config layer."""
    import yaml
    from conftest import ROOT, composed_params

    from sftboot.core.config import Params

    composed = {}
    for profile in ("default", "micro", "gpu"):
        composed[profile] = composed_params([f"profile={profile}"])
        Params.model_validate(composed[profile])
    assert composed["default"] == yaml.safe_load((ROOT / "params.yaml").read_text())  # rerun `dvc exp run` after editing conf/
    gpu = composed["gpu"]
    assert gpu["student"]["model"] != "builtin:tiny" and gpu["rl"]["lora"]["enabled"] and gpu["student"]["pretrain"]["steps"] == 0
    # the reference's rules and budgets: a retry after an invalid answer, room to think (<= 128 tokens a turn, 768 a game)
    assert gpu["rl"]["forfeit_invalid"] is False and gpu["rl"]["max_tokens_per_turn"] == gpu["eval"]["max_tokens_per_turn"] == 128
    assert gpu["rl"]["max_tokens_per_game"] == 768 and gpu["compute"] == {"device": "auto", "dtype": "auto", "processes": 1, "portable": False}
    assert composed["micro"]["eval"]["games"] < composed["default"]["eval"]["games"]


def _leaves(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        flat |= _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value}
    return flat


def test_a_default_value_lives_only_in_the_default_profile():
    """The params models hold types and bounds, never a competing default; profiles state only what they change."""
    from pathlib import Path

    import yaml

    from sftboot.core.config import Section, profile_defaults
    from sftboot.envs import BUILTIN, environment_class

    for name in BUILTIN:  # each builtin environment's params class lives in its own module
        environment_class(name)
    sections = set()
    pending = [Section]
    while pending:
        sections |= set(subclasses := pending.pop().__subclasses__())
        pending += subclasses
    for section in sections:
        for name, field in section.model_fields.items():
            assert field.is_required(), f"{section.__name__}.{name} carries a default; it belongs in conf/profile/default.yaml"
    default = _leaves(profile_defaults())
    for profile in ("micro", "gpu"):
        changes = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "profile" / f"{profile}.yaml").read_text())
        changes.pop("defaults")
        restated = {key for key, value in _leaves(changes).items() if default.get(key) == value}
        assert not restated, f"conf/profile/{profile}.yaml restates default values: {sorted(restated)}"


def test_a_missing_key_is_named_with_where_its_default_lives(project):
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    del params["rl"]["steps"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(project, "teacher")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "error: params.yaml: rl.steps: missing; add it (conf/profile/default.yaml holds its default; `dvc exp run` recomposes params.yaml)"
    )


def test_a_misspelt_key_is_named_not_the_key_it_leaves_missing(project):
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["rl"]["learnig_rate"] = params["rl"].pop("learning_rate")
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(project, "teacher")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: params.yaml: unknown key 'rl.learnig_rate'; did you mean 'rl.learning_rate'?"
