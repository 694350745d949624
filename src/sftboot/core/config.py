"""Typed, validated views of params.yaml: one pydantic model per params section, named like the stage.

The models hold types, bounds and descriptions; every default value lives in the default profile
(conf/profile/default.yaml), which composes params.yaml. A wrong or missing key, type or value
stops a stage with one line naming the key and what is allowed.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sftboot.core.errors import UserError

PARAMS_FILE = Path("params.yaml")
BUILTIN_PREFIX = "builtin:"  # student.model values sftboot builds from student.builtin instead of loading
DEFAULT_PROFILE = Path(__file__).resolve().parents[3] / "conf" / "profile" / "default.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvParams(BaseModel):
    """`name` picks the environment; its own section (`env.<name>`) holds its settings, checked by the
    environment's own params class when it is built (sftboot.envs), a builtin's and a user's alike."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the section of the environment to play: a builtin (sftboot.envs) or your own")
    source: str = Field(min_length=1, description="the environment's code, a dep in dvc.yaml of every stage that plays it: your environment's file or folder")


class ScriptedTeacherParams(Section):
    skill: float = Field(ge=0.0, le=1.0, description="probability of a considered move; otherwise a random legal one")
    lookahead: float = Field(ge=0.0, le=1.0, description="probability of searching ahead; otherwise its habit alone, blind to what only a search sees")


class OpenAITeacherParams(Section):
    base_url: str
    model: str
    api_key_env: str = Field(min_length=1, description="environment variable holding the key")
    temperature: float = Field(ge=0.0, le=2.0)
    top_p: float | None = Field(gt=0.0, le=1.0, description="null: the server's default")
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = Field(description="for reasoning models; null: not sent")
    extra_body: dict = Field(description="extra request fields a server understands (e.g. vLLM's top_k)")
    max_tokens: int = Field(ge=1)
    timeout_s: float = Field(gt=0)
    max_retries: int = Field(ge=0)
    concurrency: int = Field(ge=1, le=256)
    price_input_per_m: float = Field(ge=0, description="USD per million prompt tokens")
    price_output_per_m: float = Field(ge=0, description="USD per million completion tokens")


class TeacherParams(Section):
    """A teacher backend's settings are its own section, `teacher.<name>`: the builtins' below, another backend's kept
    in `backends` (sftboot.policies.TEACHERS checks it); any other key is refused."""

    policy: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="a teacher of sftboot.policies.TEACHERS: scripted | openai")
    games: int = Field(ge=1)
    difficulty_min: float = Field(ge=0.0, le=1.0, description="the games' difficulty p is drawn from [min, max]; the environment says what p means")
    difficulty_max: float = Field(ge=0.0, le=1.0)
    num_groups: int = Field(ge=1)
    scripted: ScriptedTeacherParams
    openai: OpenAITeacherParams
    backends: dict[str, dict] = Field(description="other backends' sections by name, gathered from teacher.<name>; not written in params")

    @model_validator(mode="before")
    @classmethod
    def _gather_backends(cls, values):
        """A mapping under a key of no builtin is another backend's section, kept for it; an unknown scalar stays an unknown key."""
        if not isinstance(values, dict):
            return values
        others = {key: value for key, value in values.items() if key not in cls.model_fields and isinstance(value, dict)}
        return {key: value for key, value in values.items() if key not in others} | {"backends": others}

    @model_validator(mode="after")
    def _p_range(self) -> TeacherParams:
        if self.difficulty_min > self.difficulty_max:
            raise ValueError("difficulty_min must be <= difficulty_max")
        return self


class FilterParams(Section):
    keep: list[Literal["win", "draw", "loss"]] = Field(min_length=1)
    deduplicate: bool


class ValidateParams(Section):
    min_examples: int = Field(ge=1)


class BuiltinModelParams(Section):
    vocab_size: int = Field(ge=300, le=65536, description="BPE vocabulary learned from the task's texts")
    hidden_size: int = Field(ge=16)
    intermediate_size: int = Field(ge=16)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    max_position_embeddings: int = Field(ge=256)

    @model_validator(mode="after")
    def _heads_divide(self) -> BuiltinModelParams:
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be a multiple of num_heads")
        return self


class PretrainParams(Section):
    steps: int = Field(ge=0, description="0: none; > 0: language modelling on the environment's texts first")
    games: int = Field(ge=1, description="random-player games whose messages form the texts")
    learning_rate: float = Field(gt=0, lt=1)
    batch_size: int = Field(ge=1)


class StudentParams(Section):
    model: str = Field(min_length=1, description="builtin:tiny, a hub id or a local folder")
    revision: str | None = Field(description="a hub model's branch, tag or commit; null: its main branch")
    builtin: BuiltinModelParams
    pretrain: PretrainParams


class LoraParams(Section):
    enabled: bool
    r: int = Field(ge=1)
    alpha: int = Field(ge=1)
    dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"]


class SFTParams(Section):
    epochs: float = Field(gt=0)
    max_steps: int = Field(ge=-1, description="-1: run `epochs` epochs")
    learning_rate: float = Field(gt=0, lt=1)
    batch_size: int = Field(ge=1)
    max_length: int = Field(ge=64, description="tokens per example; longer ones are truncated and counted")
    warmup_ratio: float = Field(ge=0, lt=1)
    assistant_only_loss: bool = Field(description="loss on the answers only; false also trains on the environment's messages (boards, free cells)")
    lora: LoraParams


class WeakSpotParams(Section):
    """GRPO groups that start where the SFT student's exact evaluation loses reward (sftboot.training.weakspots)."""

    share: float = Field(ge=0, le=1, description="of the run's groups; the rest open a fresh game")
    limit: int = Field(ge=1, description="the costliest positions kept")
    refresh_every: int = Field(ge=1, description="steps between exact evaluations of the model being trained, which find its spots anew")


class ProbeParams(Section):
    """The best move's probability at the costliest weak spots, logged during RL (sftboot.training.spotprobe)."""

    every: int = Field(ge=1, description="steps between probes")
    spots: int = Field(ge=1, description="the costliest judged spots probed")
    samples: int = Field(ge=1, description="answers sampled per spot at rl.temperature")


class ImitationParams(Section):
    """The teacher's SFT games mixed into every RL step's loss (sftboot.training.imitation)."""

    weight: float = Field(ge=0, description="of the next-token loss on the teacher's answers; 0: pure RL")
    batch_size: int = Field(ge=1, description="SFT games drawn per RL step")


class RLParams(Section):
    steps: int = Field(ge=1)
    learning_rate: float = Field(gt=0, lt=1)
    num_generations: int = Field(ge=2, description="games per group sharing one opening (GRPO group size)")
    games_per_step: int = Field(ge=2)
    opponents: Literal["range", "suites"] = Field(
        description="range: each group's p from its stratum of [difficulty_min, difficulty_max]; suites: the groups "
        "take turns at the environment's evaluation suites, so RL meets every situation the evaluation judges",
    )
    difficulty_min: float = Field(ge=0.0, le=1.0, description="opponents: range draws each group's difficulty p from [min, max]")
    difficulty_max: float = Field(ge=0.0, le=1.0)
    num_groups: int = Field(ge=1, description="stratified opponent-strength buckets per step (opponents: range)")
    temperature: float = Field(gt=0, le=3.0)
    max_tokens_per_turn: int = Field(ge=8)
    max_tokens_per_game: int = Field(ge=16)
    loss_type: Literal["cispo", "grpo", "dapo", "dr_grpo", "bnpo"]
    epsilon_high: float = Field(gt=0, description="CISPO's importance-weight cap")
    beta: float = Field(ge=0, description="KL weight; 0 needs no reference model")
    save_steps: int = Field(ge=1, description="checkpoint interval; a killed run resumes from the last one")
    reward_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        description="TRL's reward_weights, one per reward part the environment names (outcome, format, invalid, and its own)"
    )
    forfeit_invalid: bool = Field(
        description="an invalid answer ends a training game as a loss, so GRPO's blame falls on the turns "
        "that led to it, not on the retry and the rest of the game; evaluation always allows the retry",
    )
    weak_spots: WeakSpotParams
    imitation: ImitationParams
    probe: ProbeParams
    lora: LoraParams

    @model_validator(mode="after")
    def _consistent(self) -> RLParams:
        if self.games_per_step % self.num_generations:
            raise ValueError("games_per_step must be a multiple of num_generations")
        if self.difficulty_min > self.difficulty_max:
            raise ValueError("difficulty_min must be <= difficulty_max")
        groups = self.games_per_step // self.num_generations
        if self.opponents == "range" and self.num_groups > groups:  # group g plays stratum g mod num_groups: the top strata would never come up
            raise ValueError(
                f"num_groups ({self.num_groups}) exceeds the GRPO groups per step (games_per_step / num_generations = "
                f"{groups}), so the strata of weaker opponents above the first {groups} would never be played; lower num_groups"
            )
        return self


class EvalParams(Section):
    games: int = Field(ge=1, description="games per model and opponent")
    seed: int = Field(ge=0, description="evaluation games are drawn apart from training games")
    batch_size: int = Field(ge=1, description="games generated together in one forward pass")
    max_tokens_per_turn: int = Field(ge=8)


class ComputeParams(Section):
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(description="auto: CUDA where available, else the CPU")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(description="auto: bf16 on a GPU that has it, else fp32")
    processes: int = Field(ge=1, description="data-parallel training processes for sft and rl (accelerate launch)")
    portable: bool = Field(description="pinned kernels and deterministic algorithms: the same bytes on any x86-64 CPU and thread count")


class Params(Section):
    seed: int = Field(ge=0)
    compute: ComputeParams
    env: EnvParams
    teacher: TeacherParams
    filter: FilterParams
    validate_: ValidateParams = Field(alias="validate")
    student: StudentParams
    sft: SFTParams
    rl: RLParams
    eval: EvalParams

    @model_validator(mode="after")
    def _whole_groups_per_process(self) -> Params:
        processes, rl = self.compute.processes, self.rl
        if rl.games_per_step % (processes * rl.num_generations):
            raise ValueError(
                f"rl.games_per_step ({rl.games_per_step}) must be a multiple of compute.processes x rl.num_generations "
                f"({processes} x {rl.num_generations}), so each process plays whole GRPO groups"
            )
        if self.sft.batch_size % processes:
            raise ValueError(f"sft.batch_size ({self.sft.batch_size}) must be a multiple of compute.processes ({processes}), which share it")
        return self

    @model_validator(mode="after")
    def _pretrain_only_the_builtin(self) -> Params:
        student = self.student
        if student.pretrain.steps and not student.model.startswith(BUILTIN_PREFIX):
            raise ValueError(
                f"student.pretrain.steps: {student.pretrain.steps} pretrains the builtin student only, and {student.model} is "
                "pretrained already; set student.pretrain.steps: 0"
            )
        return self


def _dotted(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"])


def _describe(errors: list[dict]) -> str:
    """The first problem, an unknown key before all others: a misspelt key also leaves the intended one missing."""
    error = next((error for error in errors if error["type"] == "extra_forbidden"), errors[0])
    key = _dotted(error) or "(top level)"
    if error["type"] == "extra_forbidden":
        missing = [_dotted(other) for other in errors if other["type"] == "missing" and other["loc"][:-1] == error["loc"][:-1]]
        close = difflib.get_close_matches(key, missing, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "remove it or check its spelling"
        return f"params.yaml: unknown key '{key}'; {hint}"
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    if error["type"] == "missing":
        return f"params.yaml: {key}: missing; add it (conf/profile/default.yaml holds its default; `dvc exp run` recomposes params.yaml)"
    if not error["loc"]:  # a rule across sections names its keys itself
        return f"params.yaml: {error['msg'].removeprefix('Value error, ')}"
    return f"params.yaml: {key}: {error['msg']}{shown}"


@cache
def profile_defaults() -> dict:
    """The default profile's values: the one place a default lives."""
    raw = yaml.safe_load(DEFAULT_PROFILE.read_text())
    raw.pop("defaults", None)
    return raw


def _merged(base: dict, changes: dict) -> dict:
    return base | {key: _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value for key, value in changes.items()}


def default_values(section: str, **changes) -> dict:
    """A section's values in the default profile, with `changes`: `default_values("env.mastermind", pegs=3)`."""
    values = profile_defaults()
    for name in section.split("."):
        values = values[name]
    return _merged(values, changes)


def defaults(section: str, **changes):
    """A params section from the default profile, with `changes`: `defaults("rl", steps=1)`, `defaults("teacher.openai")`."""
    model = Params
    for name in section.split("."):
        model = model.model_fields["validate_" if name == "validate" else name].annotation
    return model.model_validate(default_values(section, **changes))


def validated(model: type[BaseModel], values: dict, where: str):
    """`values` as `model`, the section `where` of params.yaml (`env.nim`); one line naming the key when they are not."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        prefix = tuple(where.split("."))
        raise UserError(_describe([problem | {"loc": prefix + tuple(problem["loc"])} for problem in error.errors()])) from None


def project_params() -> Params:
    """This project's params.yaml, or the default profile outside a project: what the CLI defaults to."""
    return load_params() if PARAMS_FILE.exists() else Params.model_validate(profile_defaults())


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
        raise UserError(_describe(error.errors())) from None
