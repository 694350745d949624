"""Environments written for Verifiers as sftboot environments: `env.name: verifiers`, `env.verifiers.environment: <module or file>`.

Verifiers (pip install -e '.[verifiers]') is the format of the recipe's reference environment and of
the Environments Hub: `load_environment(**args)` returns an environment with a dataset of prompts,
an `env_response` that answers the model, stop conditions and a rubric that scores the rollout.
The adapter lets the environment run its own rollout loop and stands in for the model: its client
hands each prompt to sftboot's engine and waits for the answer, so teacher rollouts, validation,
SFT, RL and evaluation play it unchanged. Once the rollout ends, the rubric's reward is the outcome
reward; the game is a win when the state says so (`state["outcome"]`: win, draw or loss) or the
reward reaches `win_reward`. Rows are drawn by each game's seed; suites name a dataset and arguments.

Supported: verifiers 0.2.x and 0.3.x (the classic API, `verifiers.legacy` in 0.3), text-only
MultiTurnEnv and SingleTurnEnv environments; tool environments and environment groups are refused.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import math
import weakref
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import Field

from sftboot.core.answer import extract_move
from sftboot.core.config import Section
from sftboot.core.errors import UserError
from sftboot.core.modules import import_user_module
from sftboot.engine.environment import OUTCOMES, Environment, Episode, GameSpec, Rewards

SUPPORTED = ((0, 2), (0, 4))  # the classic MultiTurnEnv API: top-level up to 0.2, aliased to verifiers.legacy in 0.3, gone in 0.4
INSTALL = "pip install -e '.[verifiers]'"
_TURN: contextvars.ContextVar[_Turn] = contextvars.ContextVar("sftboot_verifiers_turn")
_ROLLOUTS: set[asyncio.Task] = set()  # unfinished rollouts, held until they end or are cancelled (the loop itself keeps weak references)


class VerifiersSuite(Section):
    split: Literal["train", "eval"] = Field(description="the environment's dataset (train) or its eval_dataset (eval) to draw rows from")
    args: dict = Field(description="load_environment's keyword arguments for this suite, over env.verifiers.args")


class VerifiersParams(Section):
    environment: str = Field(min_length=1, description="a module with load_environment (an installed Verifiers environment) or path/to/file.py")
    args: dict = Field(description="load_environment's keyword arguments")
    suites: dict[str, VerifiersSuite] = Field(min_length=1, description="evaluation suites by name")
    win_reward: float = Field(description="the rubric's reward at or above which a game is a win, where its state names no outcome")
    max_turns: int = Field(ge=1, le=100, description="assistant turns before the game ends as a loss")


def import_verifiers():
    """The verifiers package, refused in one line when missing or of an API the adapter does not speak."""
    try:
        import verifiers
    except ImportError:
        raise UserError(f"env.name=verifiers needs Verifiers: {INSTALL}") from None
    version = tuple(int(part) for part in verifiers.__version__.split(".")[:2])
    if not SUPPORTED[0] <= version < SUPPORTED[1]:
        raise UserError(f"env.verifiers: verifiers {verifiers.__version__} is installed; sftboot speaks its classic API, verifiers>=0.2,<0.4: {INSTALL}")
    return verifiers


@cache
def _turns_client() -> type:
    """A Verifiers client whose model is sftboot: it hands each prompt to the episode being played and returns its answer."""
    vf = import_verifiers()

    class TurnsClient(vf.Client):
        def __init__(self) -> None:
            super().__init__(None)

        def setup_client(self, config) -> None:
            return None

        async def to_native_tool(self, tool):
            raise UserError("env.verifiers: the environment offers tools; sftboot plays text-only environments")

        async def to_native_prompt(self, messages):
            return messages, {}

        async def get_native_response(self, prompt, model, sampling_args, tools=None, **kwargs) -> str:
            return await _TURN.get().ask(prompt, kwargs.get("state"))

        async def raise_from_native_response(self, response) -> None:
            return None

        async def from_native_response(self, response: str):
            message = vf.ResponseMessage(content=response, finish_reason="stop", is_truncated=False)
            return vf.Response(id="sftboot", created=0, model="sftboot", message=message)

        async def close(self) -> None:
            return None

    return TurnsClient


@cache
def _loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, where every episode's rollout runs as a task until it asks for an answer.

    It is never the thread's current loop, so no other code meets it; at exit, unfinished rollouts are
    cancelled (their cleanup handlers run) and the loop is closed.
    """
    loop = asyncio.new_event_loop()
    atexit.register(_close, loop)
    return loop


def _run(awaitable):
    return _loop().run_until_complete(awaitable)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending))
    loop.close()


class _Turn:
    """Where a rollout meets its episode: the prompt the environment asks with, and the answer it waits for."""

    def __init__(self) -> None:
        self.asked: asyncio.Future | None = None  # resolves with (prompt, state) when the environment waits for an answer
        self.answer: asyncio.Future | None = None

    async def ask(self, prompt, state) -> str:
        self.answer = _loop().create_future()
        self.asked.set_result((prompt, state))
        return await self.answer


@dataclass
class VerifiersEpisode(Episode):
    spec: GameSpec
    max_turns: int
    environment: Any = field(repr=False)  # the Verifiers environment
    row: dict = field(repr=False)
    win_reward: float
    reward: float = 0.0  # the rubric's reward once the rollout is over
    _turn: _Turn = field(default_factory=_Turn, repr=False)
    _task: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        context = contextvars.copy_context()
        context.run(_TURN.set, self._turn)  # the client finds its turn through the rollout task's context
        self._task = _loop().create_task(self.environment.rollout(self.row, _turns_client()(), "sftboot"), context=context)
        _ROLLOUTS.add(self._task)
        self._task.add_done_callback(_ROLLOUTS.discard)
        weakref.finalize(self, self._task.cancel)  # an episode dropped unfinished releases its rollout (cleanup runs at the loop's next turn)
        self._resume()

    def _resume(self, answer: str | None = None) -> None:
        """Run the rollout until it asks for the next answer or ends."""
        turn = self._turn
        turn.asked = _loop().create_future()
        if answer is not None:
            turn.answer.set_result(answer)
        _run(asyncio.wait([self._task, turn.asked], return_when=asyncio.FIRST_COMPLETED))
        if turn.asked.done():
            prompt, state = turn.asked.result()
            self.messages = _plain(prompt)
            self._count_invalid(state)
            return
        self._finish()

    def _count_invalid(self, state) -> None:
        """An environment that judges moves counts the invalid ones in its state, malformed answers included; sftboot takes its count."""
        if state is not None and "invalid_moves" in state:
            self.invalid_moves = int(state["invalid_moves"])

    def _finish(self) -> None:
        try:
            state = self._task.result()
        except Exception as error:
            raise self._failure("its rollout", error) from None
        if state.get("error") is not None:
            raise self._failure("its rollout", state["error"])
        try:
            _run(self.environment.rubric.score_rollout(state))
            _run(self.environment.rubric.cleanup(state))
        except Exception as error:
            raise self._failure("its rubric", error) from None
        reward = state.get("reward")
        if not isinstance(reward, int | float) or math.isnan(reward):
            raise self._failure("its rubric", f"reward {reward!r}, not a number")
        self.reward = float(reward)
        self.messages = _plain(state["prompt"]) + _plain(state.get("completion") or [])
        self._count_invalid(state)
        named = state.get("outcome")
        self.outcome = named if named in OUTCOMES else "win" if self.reward >= self.win_reward else "loss"

    def _failure(self, part: str, error) -> UserError:
        first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
        return UserError(f"env.verifiers: {type(self.environment).__name__} failed in {part} on its row {self.row.get('example_id', '?')}: {first_line}")

    def _apply(self, answer: str) -> str:
        move = extract_move(answer)
        self.moves.append(int(move) if move and move.isdigit() else -1)
        if move is None:  # the environment judges the answer; a missing move is also sftboot's invalid answer
            self.invalid_moves += 1
            if self.forfeit_invalid:
                self.outcome = "loss"
                return ""
        self._resume(answer)
        return ""

    def _say(self, status: str) -> None:
        """The environment wrote the conversation; sftboot only ends a game it stopped (its turn cap, a forfeit)."""
        if not self.done or self._task.done():
            return
        self._task.cancel()
        _run(asyncio.gather(self._task, return_exceptions=True))
        self.messages.append({"role": "user", "content": status})

    def rewards(self) -> Rewards:
        base = super().rewards()
        return Rewards(outcome=self.reward if self._task.done() and not self._task.cancelled() else 0.0, format=base.format, invalid=base.invalid)


def _plain(messages) -> list[dict]:
    """Verifiers' messages (pydantic models or dicts) as sftboot's {"role", "content"} dicts."""
    plain = []
    for message in messages:
        role, content = (message["role"], message["content"]) if isinstance(message, dict) else (message.role, message.content)
        if not isinstance(content, str):
            raise UserError(f"env.verifiers: a {role} message holds {type(content).__name__} content; sftboot plays text-only environments")
        plain.append({"role": role, "content": content})
    return plain


class Verifiers(Environment):
    name = "verifiers"
    section = VerifiersParams

    def __init__(self, params: VerifiersParams) -> None:
        super().__init__(params)
        self.suites = dict.fromkeys(params.suites, 0.0)  # a suite is a dataset and arguments, not a difficulty: episodes read spec.suite
        self.suite_titles = {name: f"{suite.split} rows" for name, suite in params.suites.items()}
        self.headline = ((next(iter(params.suites)), "win"),)
        module = import_user_module(params.environment, "env.verifiers.environment")
        if not callable(getattr(module, "load_environment", None)):
            raise UserError(f"env.verifiers.environment: {params.environment} has no load_environment function")
        self._module = module
        self._built: dict[str, tuple[Any, list[dict]]] = {}
        self._source("")  # a broken environment is refused before any stage work

    def _source(self, suite: str) -> tuple[Any, list[dict]]:
        """The Verifiers environment and the dataset rows of a suite ('' for training games)."""
        if suite not in self._built:
            vf = import_verifiers()
            settings = self.params.suites[suite] if suite else None
            args = self.params.args | (settings.args if settings else {})
            try:
                environment = self._module.load_environment(**args)
            except Exception as error:
                raise UserError(f"env.verifiers: {self.params.environment}'s load_environment({args}) failed: {error}") from None
            if not isinstance(environment, vf.MultiTurnEnv) or getattr(environment, "tool_defs", None):
                raise UserError(
                    f"env.verifiers: {self.params.environment} builds a {type(environment).__name__}; "
                    "sftboot plays text-only MultiTurnEnv and SingleTurnEnv environments (no tools, no groups)"
                )
            split = settings.split if settings else "train"
            try:
                rows = (environment.get_eval_dataset() if split == "eval" else environment.get_dataset()).to_list()
            except ValueError:  # "dataset is not set"
                rows = []
            if not rows:
                where = f"suites.{suite} (split {split})" if suite else "its training dataset"
                raise UserError(f"env.verifiers: {self.params.environment} has no rows for {where}; give load_environment a dataset")
            self._built[suite] = (environment, rows)
        return self._built[suite]

    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> VerifiersEpisode:
        environment, rows = self._source(spec.suite)
        row = rows[spec.seed % len(rows)]
        return VerifiersEpisode(spec, self.max_turns, environment, row, self.params.win_reward, forfeit_invalid=forfeit_invalid)
