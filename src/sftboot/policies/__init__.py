"""Teachers: the policies the teacher stage can play, chosen by `teacher.policy` in params."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sftboot.core.config import TeacherParams
    from sftboot.engine.environment import Environment
    from sftboot.engine.policy import Policy


def make_teacher(params: TeacherParams, environment: Environment) -> Policy:
    """The teacher named by `teacher.policy` in params; `scripted` is the environment's own."""
    if params.policy == "openai":
        from sftboot.policies.openai_chat import OpenAIChatPolicy

        return OpenAIChatPolicy(params.openai)
    return environment.scripted_teacher(params.scripted.skill, params.scripted.lookahead)
