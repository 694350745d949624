"""Teachers: the policies the teacher stage can play, chosen by `teacher.policy` in params.

`TEACHERS` is the one registry the teacher stage, the CLI (`--model <name>[:<arg>]`) and the model card read: a new
backend is its module and one entry here, its settings the section `teacher.<name>` of params.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sftboot.core.config import OpenAITeacherParams, ScriptedTeacherParams, validated
from sftboot.core.errors import UserError

if TYPE_CHECKING:
    from sftboot.core.config import TeacherParams
    from sftboot.engine.environment import Environment
    from sftboot.engine.policy import Policy


@dataclass(frozen=True)
class Teacher:
    """A teacher backend: its settings, how to build it, how a model card names it, and what the CLI may set."""

    section: type[BaseModel]  # the settings `teacher.<name>`
    build: Callable[[Any, Environment], Policy]  # (its settings, the environment) -> the policy
    label: Callable[[Any], str]  # the model card's `teacher.policy` line
    flags: Callable[[Namespace, str], dict] = lambda args, arg: {}  # `sftboot eval --model <name>:<arg>`: CLI flags over its settings
    api: bool = False  # a remote API: the teacher stage counts its retries and faults


def _scripted(settings: ScriptedTeacherParams, environment: Environment) -> Policy:
    return environment.scripted_teacher(settings.skill, settings.lookahead)


def _openai(settings: OpenAITeacherParams, environment: Environment) -> Policy:
    from sftboot.policies.openai_chat import OpenAIChatPolicy

    return OpenAIChatPolicy(settings)


TEACHERS: dict[str, Teacher] = {
    "scripted": Teacher(
        ScriptedTeacherParams, _scripted, label=lambda settings: "scripted", flags=lambda args, arg: {"skill": args.skill, "lookahead": args.lookahead}
    ),
    "openai": Teacher(
        OpenAITeacherParams,
        _openai,
        label=lambda settings: f"openai: {settings.model}",
        flags=lambda args, arg: (
            ({"model": arg} if arg else {})  # `openai` alone: the model in params
            | {
                "base_url": args.base_url,
                "api_key_env": args.api_key_env,
                "concurrency": args.concurrency,
                "max_retries": args.max_retries,
                "max_tokens": args.api_max_tokens,
            }
        ),
        api=True,
    ),
}


def teacher_backend(params: TeacherParams) -> tuple[Teacher, Any]:
    """The backend `teacher.policy` names and its checked settings; one line when there is no such backend or section."""
    name = params.policy
    if name not in TEACHERS:
        raise UserError(f"params.yaml: teacher.policy: no teacher {name!r}; choose one of {', '.join(TEACHERS)}")
    backend = TEACHERS[name]
    builtin = getattr(params, name, None)  # the builtins' sections are fields of the params; another's is in `backends`
    settings = builtin if isinstance(builtin, BaseModel) else params.backends.get(name)
    if settings is None:
        raise UserError(f"params.yaml: teacher.{name}: missing; add the settings of the {name} teacher")
    return backend, settings if isinstance(settings, backend.section) else validated(backend.section, settings, f"teacher.{name}")


def make_teacher(params: TeacherParams, environment: Environment) -> Policy:
    """The teacher named by `teacher.policy` in params; `scripted` is the environment's own."""
    backend, settings = teacher_backend(params)
    return backend.build(settings, environment)
