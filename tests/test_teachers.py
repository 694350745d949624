"""The teacher registry: a new backend is one entry of `sftboot.policies.TEACHERS` and its settings section in params,
and the teacher stage, the CLI and the model card all find it there."""

import pytest
from pydantic import Field

from sftboot.core.config import Section, TeacherParams, profile_defaults
from sftboot.core.errors import UserError
from sftboot.engine.environment import game_specs
from sftboot.engine.policy import Reply
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin, format_answer
from sftboot.policies import TEACHERS, Teacher, make_teacher, teacher_backend


class FirstFreeParams(Section):
    think: str = Field(min_length=1, description="what the teacher says it thinks")


class FirstFree:
    """A teacher that plays the lowest move the environment's last message offers (tic-tac-toe's first free cell)."""

    policy_id = "first-free"

    def __init__(self, think: str) -> None:
        self.think = think

    def respond(self, conversations, seeds):
        return [Reply(format_answer(self.think, conversation[-1]["content"].split("Available positions: [")[1][0])) for conversation in conversations]


def _teacher_params(**changes) -> TeacherParams:
    return TeacherParams.model_validate(profile_defaults()["teacher"] | changes)


@pytest.fixture
def first_free(monkeypatch):
    backend = Teacher(FirstFreeParams, lambda settings, environment: FirstFree(settings.think), label=lambda settings: f"first free ({settings.think})")
    monkeypatch.setitem(TEACHERS, "first_free", backend)


def test_a_new_backend_is_one_registry_entry_with_its_own_section(first_free):
    params = _teacher_params(policy="first_free", first_free={"think": "lowest free cell"})
    teacher = make_teacher(params, environment := builtin("tictactoe"))
    games = play_games(environment, teacher, game_specs(4, seed=0, p_min=1.0, p_max=1.0), batch_size=4)
    assert games["invalid_moves"].sum() == 0 and "lowest free cell" in games["messages"][0][2]["content"]
    backend, settings = teacher_backend(params)
    assert backend.label(settings) == "first free (lowest free cell)"  # the model card's line


def test_a_backend_or_its_section_that_is_not_there_is_one_line(first_free):
    with pytest.raises(UserError, match=r"^params.yaml: teacher.policy: no teacher 'gpt'; choose one of scripted, openai, first_free$"):
        make_teacher(_teacher_params(policy="gpt"), builtin("tictactoe"))
    with pytest.raises(UserError, match=r"^params.yaml: teacher.first_free: missing; add the settings of the first_free teacher$"):
        make_teacher(_teacher_params(policy="first_free"), builtin("tictactoe"))
    with pytest.raises(UserError, match=r"^params.yaml: teacher.first_free.think: String should have at least 1 character"):
        make_teacher(_teacher_params(policy="first_free", first_free={"think": ""}), builtin("tictactoe"))
