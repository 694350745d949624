"""Environments: the task every stage plays, chosen by `env.name` in params.

`env.name` names a section of `env`: a builtin (tictactoe, mastermind, textarena, verifiers), or your own, whose
section holds its settings and `class`, the class as `module:Class` or `path/to/file.py:Class`
(docs/environments.md shows how to write one).

    env:
      name: wordle
      source: envs/wordle.py       # a dep of every stage that plays it
      wordle: {class: envs/wordle.py:Wordle, max_turns: 6}

An environment's author imports what it builds on from here: `from sftboot.envs import Environment, Episode, GameSpec, Reply, format_answer`.
"""

from __future__ import annotations

from pathlib import Path

from sftboot.core.answer import format_answer
from sftboot.core.config import default_values, project_params, validated
from sftboot.core.errors import UserError
from sftboot.core.modules import import_user_module
from sftboot.engine.environment import Environment, Episode, GameSpec
from sftboot.engine.policy import Reply

__all__ = ["BUILTIN", "Environment", "Episode", "GameSpec", "Reply", "builtin", "environment_class", "format_answer", "make_environment", "project_environment"]

BUILTIN = {
    "tictactoe": "sftboot.envs.tictactoe:TicTacToe",
    "mastermind": "sftboot.envs.mastermind:Mastermind",
    "textarena": "sftboot.envs.textarena:TextArena",
    "verifiers": "sftboot.envs.verifiers:Verifiers",
}


def environment_class(target: str) -> type[Environment]:
    """The class `target` (a builtin name, `module:Class` or `path/to/file.py:Class`) stands for; one line when it is not one."""
    target = BUILTIN.get(target, target)
    module_name, _, class_name = target.rpartition(":")
    if not module_name or not class_name:
        raise UserError(
            f"env: {target!r} is not an environment; use one of {', '.join(BUILTIN)}, or give your section a class: module:Class or path/to/file.py:Class"
        )
    module = import_user_module(module_name, "env")
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, Environment)):
        raise UserError(f"env: {module_name} has no Environment subclass {class_name!r}")
    return found


def make_environment(env_params) -> Environment:
    """The environment selected in params, built from its own section `env.<name>`, which its params class checks."""
    name = env_params.name
    section = (env_params.model_extra or {}).get(name)
    if section is None:
        raise UserError(f"params.yaml: env.{name}: missing; add the environment's section (a builtin: {', '.join(BUILTIN)}; your own: its settings and class)")
    if not isinstance(section, dict):
        raise UserError(f"params.yaml: env.{name}: must be a section of settings (got {section!r})")
    if name not in BUILTIN and "class" not in section:
        raise UserError(f"params.yaml: env.{name}.class: missing; name your environment's class (module:Class or path/to/file.py:Class)")
    target = section.get("class", name)
    _check_source(target, env_params.source, f"env.{name}.class")
    cls = environment_class(target)
    return cls(validated(cls.section, {key: value for key, value in section.items() if key != "class"}, f"env.{name}"))


def _check_source(target: str, source: str, key: str) -> None:
    """A class from a file must lie in `env.source`, or DVC would not rerun the stages when the file changes."""
    module = target.rpartition(":")[0]
    if module.endswith(".py") and Path(source) not in (Path(module), *Path(module).parents):
        raise UserError(f"params.yaml: env.source: {source} does not hold {key}'s file {module}; set env.source: {module}, so editing it reruns the stages")


def project_environment(name: str | None = None) -> Environment:
    """The environment of this project's params.yaml (the default profile's outside a project), or the one `name` picks there."""
    env = project_params().env
    if name and name not in BUILTIN and name not in (env.model_extra or {}):
        known = ", ".join(dict.fromkeys([*BUILTIN, *(env.model_extra or {})]))
        raise UserError(f"--env: no environment {name!r}; choose one of {known} (your own needs its env.{name} section in params.yaml)")
    return make_environment(env.model_copy(update={"name": name}) if name else env)


def builtin(name: str, **settings) -> Environment:
    """A builtin environment with the default profile's settings, changed by `settings`: `builtin("tictactoe", max_turns=5)`."""
    cls = environment_class(name)
    return cls(validated(cls.section, default_values(f"env.{name}", **settings), f"env.{name}"))
