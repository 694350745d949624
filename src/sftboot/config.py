"""Typed, validated views of params.yaml: one pydantic model per params section, named like the stage.

A wrong key, type or value stops a stage with one line naming the key and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sftboot.errors import UserError

PARAMS_FILE = Path("params.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvParams(Section):
    max_turns: int = Field(8, ge=5, le=20, description="assistant turns before a game ends as a loss")


class ScriptedTeacherParams(Section):
    skill: float = Field(0.9, ge=0.0, le=1.0, description="probability of playing a minimax-optimal move")


class OpenAITeacherParams(Section):
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description="environment variable holding the key")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    concurrency: int = Field(8, ge=1, le=256)
    price_input_per_m: float = Field(0.15, ge=0, description="USD per million prompt tokens")
    price_output_per_m: float = Field(0.60, ge=0, description="USD per million completion tokens")


class TeacherParams(Section):
    policy: Literal["scripted", "openai"] = "scripted"
    games: int = Field(200, ge=1)
    opponent_p_min: float = Field(0.0, ge=0.0, le=1.0)
    opponent_p_max: float = Field(1.0, ge=0.0, le=1.0)
    num_groups: int = Field(8, ge=1)
    scripted: ScriptedTeacherParams = ScriptedTeacherParams()
    openai: OpenAITeacherParams = OpenAITeacherParams()

    @model_validator(mode="after")
    def _p_range(self) -> "TeacherParams":
        if self.opponent_p_min > self.opponent_p_max:
            raise ValueError("opponent_p_min must be <= opponent_p_max")
        return self


class FilterParams(Section):
    keep: list[Literal["win", "draw", "loss"]] = Field(["win", "draw"], min_length=1)


class ValidateParams(Section):
    min_examples: int = Field(100, ge=1)


class Params(Section):
    seed: int = Field(0, ge=0)
    env: EnvParams = EnvParams()
    teacher: TeacherParams = TeacherParams()
    filter: FilterParams = FilterParams()
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"params.yaml: unknown key '{key}'; remove it or check its spelling"
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"params.yaml: {key}: {error['msg']}{shown}"


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate the whole params file; raise UserError with one line on the first problem."""
    if not path.exists():
        raise UserError(f"{path} not found; run from the project root")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}".splitlines()[0]) from None
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise UserError(_describe(error.errors()[0])) from None
