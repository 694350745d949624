"""The environment interface: what every stage needs from a task, and nothing it does not.

An `Environment` is the task, built from its own params section (`env.<name>`); an `Episode` is one
game of it. Every stage talks to these two classes only: the teacher and RL play episodes, the
validate stage replays them, evaluation runs the environment's suites, the report shows its
reference, and the builtin student reads its texts. Everything random in an episode is drawn from
its spec's seed, so replaying the same answers replays the same episode bit for bit.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from sftboot.core.answer import extract_move, is_well_formed
from sftboot.core.errors import UserError

if TYPE_CHECKING:
    import polars as pl
    from pydantic import BaseModel

    from sftboot.engine.policy import Policy

OUTCOMES = ("win", "draw", "loss")
FORMAT_FEEDBACK = "Please provide a move inside <move>...</move> tags."
FORMAT_WEIGHT = 0.2
INVALID_PENALTY = -0.1


@dataclass(frozen=True)
class GameSpec:
    """What fixes an episode before any answer: its id, its seed and its difficulty p in [0, 1]
    (each environment says what it means)."""

    game_id: int
    seed: int
    p: float
    opening: tuple[str, ...] = ()  # answers replayed before play starts: RL's games from the student's weak positions
    suite: str = ""  # the evaluation suite a game belongs to ("" for training games), for environments whose suites differ in more than p


@dataclass
class Rewards:
    """The environment's scores of one episode; RL weighs them with `rl.reward_weights`."""

    outcome: float
    format: float
    invalid: float

    @property
    def total(self) -> float:
        return self.outcome + FORMAT_WEIGHT * self.format + self.invalid


@dataclass(frozen=True)
class RewardPart:
    """One score of a played game that RL can weigh with `rl.reward_weights.<name>`."""

    meaning: str
    score: Callable[[dict], float]  # a game as `play_games` returns it: one row (messages, moves, reward_outcome, ...)


SHARED_REWARD_PARTS = {
    "outcome": RewardPart("win 1, draw 0.5, loss 0 (the episode's OUTCOME_REWARD)", lambda game: game["reward_outcome"]),
    "format": RewardPart("fraction of well-formed answers", lambda game: game["reward_format"]),
    "invalid": RewardPart("-0.1 for a game with any malformed or illegal answer", lambda game: game["reward_invalid"]),
}


@dataclass(kw_only=True)
class Episode(ABC):
    """One game: `messages` holds the conversation so far, `step` takes the model's answer.

    A subclass says what a move is (`parse`, `legal`), what it does (`play`, which returns the
    environment's reply and may set `outcome`), and what the player sees (`_say`); one whose game
    judges moves itself (an adapter) overrides `_apply` instead. The turn cap, the format and
    invalid-move bookkeeping and the rewards are the same for every environment. A subclass is a
    dataclass too: its own fields (`spec`, `max_turns`, its state) come first, these keyword-only ones after.
    """

    INVALID_MOVE: ClassVar[str] = "Invalid move."
    TURN_LIMIT: ClassVar[str] = "Turn limit reached."
    ENDINGS: ClassVar[dict[str, str]] = {"win": "You win!", "loss": "You lose!", "draw": "It's a draw!"}
    OUTCOME_REWARD: ClassVar[dict[str, float]] = {"win": 1.0, "draw": 0.5, "loss": 0.0}

    forfeit_invalid: bool = False  # an invalid answer loses the game instead of earning a retry (an RL option)
    messages: list[dict] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)  # every move played, by either side, as the environment numbers them
    well_formed: list[bool] = field(default_factory=list)
    invalid_moves: int = 0
    outcome: str | None = None
    capped: bool = False
    opponent_started: bool = False  # whether the environment moved before the first answer

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def turns(self) -> int:
        return len(self.well_formed)

    def step(self, answer: str) -> None:
        """Apply one assistant message and append the environment's reply."""
        if self.done:
            raise RuntimeError("the game is over")
        self.messages.append({"role": "assistant", "content": answer})
        self.well_formed.append(is_well_formed(answer))
        status = self._apply(answer)
        if not self.done and self.turns >= self.max_turns:
            self.outcome, self.capped = "loss", True
            status = f"{status} {self.TURN_LIMIT}".strip()
        if self.done:
            status = f"{status} {self.ENDINGS[self.outcome]}".strip()
        self._say(status)

    def rewards(self) -> Rewards:
        fraction = sum(self.well_formed) / len(self.well_formed) if self.well_formed else 0.0
        return Rewards(
            outcome=self.OUTCOME_REWARD[self.outcome or "loss"],
            format=fraction,
            invalid=INVALID_PENALTY if self.invalid_moves else 0.0,
        )

    def _apply(self, answer: str) -> str:
        move = extract_move(answer)
        action = self.parse(move) if move is not None else None
        if action is None or not self.legal(action):
            self.invalid_moves += 1
            if self.forfeit_invalid:
                self.outcome = "loss"
            return FORMAT_FEEDBACK if move is None else self.INVALID_MOVE
        return self.play(action)

    def parse(self, move: str) -> int | None:
        """The move inside `<move>…</move>` as the environment's move number, or None when it names none."""
        raise NotImplementedError

    def legal(self, action: int) -> bool:
        """Whether the parsed move may be played now."""
        raise NotImplementedError

    def play(self, action: int) -> str:
        """Play a legal move (and any reply of the environment); return what the environment says."""
        raise NotImplementedError

    @abstractmethod
    def _say(self, status: str) -> None:
        """Append the environment's message: the status, then the state as the model should see it."""

    def random_answer(self, rng: random.Random) -> str:
        """A legal move in the answer tags, for the builtin student's pretraining texts."""
        raise NotImplementedError


class Environment(ABC):
    """A task: how to start its episodes, how to judge them, and what it offers the pipeline.

    Required: `name`, `section` (its pydantic params model, whose `max_turns` caps an episode),
    `suites` (named evaluation settings, each a difficulty p) and `episode`. Optional, each
    refused in one line when a stage needs it and the environment lacks it: a scripted teacher,
    random legal answers (the builtin student's texts), an exact evaluator, a report reference.
    """

    name: ClassVar[str]
    section: ClassVar[type[BaseModel]]
    suites: ClassVar[dict[str, float]]
    suite_titles: ClassVar[dict[str, str]] = {}
    headline: ClassVar[tuple[tuple[str, str], ...]] = ()  # (suite, outcome) pairs for metrics/summary.json
    person_side: ClassVar[str] = ""  # the environment's side a person can take in `sftboot serve` ("" for none)
    token_units: ClassVar[str] = r"[0-9]"  # the builtin student's tokenizer keeps these whole, never merged with their neighbours
    refused_answer: ClassVar[str] = "<move>9</move>"  # an answer the task refuses, among the tokenizer's texts

    def __init__(self, params: BaseModel) -> None:
        self.params = params
        self.max_turns: int = params.max_turns

    @abstractmethod
    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> Episode:
        """A new episode for `spec`, its opening messages already in `messages`."""

    def replay(self, spec: GameSpec, answers: list[str]) -> Episode:
        """Play the recorded answers again; the environment must produce the same episode."""
        episode = self.episode(spec)
        for answer in answers:
            if episode.done:
                raise ValueError("the game ended before all recorded answers were played")
            episode.step(answer)
        return episode

    def start(self, spec: GameSpec, forfeit_invalid: bool = False) -> Episode:
        """A new episode for `spec` with its `opening` answers already played (they keep their retries)."""
        if not spec.opening:
            return self.episode(spec, forfeit_invalid)
        episode = self.replay(spec, list(spec.opening))
        episode.forfeit_invalid = forfeit_invalid
        return episode

    def title(self, suite: str) -> str:
        return self.suite_titles.get(suite, suite)

    def reward_parts(self) -> dict[str, RewardPart]:
        """The scores RL can weigh (`rl.reward_weights.<name>`), in the order TRL sums them: the shared three, then the environment's own."""
        return dict(SHARED_REWARD_PARTS)

    def scripted_teacher(self, skill: float, lookahead: float) -> Policy:
        raise UserError(f"env.name={self.name} has no scripted teacher; set teacher.policy: openai (an LLM teacher)")

    def exact_evaluation(self, policy: Policy, suite: str, batch_size: int) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """Every line a deterministic policy can play in `suite`, with probabilities; None: sampled games instead."""
        return None

    def sound_answers(self, game: dict) -> list[bool] | None:
        """Whether each answer of a played game (a games-frame row) kept the position's value, so RL imitates the
        teacher's reading without its slips (rl.imitation); None: the environment does not judge moves."""
        return None

    @property
    def evaluates_exactly(self) -> bool:
        """Whether greedy students get exact evaluation here (the environment overrides `exact_evaluation`)."""
        return type(self).exact_evaluation is not Environment.exact_evaluation

    def reference(self, suite: str) -> dict | None:
        """The report's reference: {"published": {model: (win, draw, loss, format, invalid)}, "best": {outcome: %},
        "best_how": how the best possible policy is found, "notes": what the reference columns mean}."""
        return None

    def report_extras(self, played: dict, path) -> list[str]:
        """Markdown about where the exactly evaluated students lose, and a picture of it at `path`; [] when none."""
        return []

    def play_in_terminal(self, policy: Policy, seed: int, show_thinking: bool) -> None:
        """`sftboot play`: the model plays one episode of the first suite while the conversation is printed."""
        episode = self.episode(GameSpec(0, seed, next(iter(self.suites.values()))))
        print(episode.messages[-1]["content"])
        while not episode.done:
            answer = policy.respond([episode.messages], [seed])[0].text
            print(f"model: {answer if show_thinking else extract_move(answer)}")
            episode.step(answer)
            print(episode.messages[-1]["content"])
        print(f"outcome: {episode.outcome}")

    def episode_against(self, person: Callable[[], str], person_first: bool) -> Episode:
        """An episode in which a person plays `person_side`: `person()` returns their next move as text, and a move
        the rules refuse raises ValueError with what to do instead. Environments with a `person_side` override it."""
        raise UserError(f"env.name={self.name} has no side for a person to play; watch the model, or play the task yourself")

    def picture(self, moves: list[int], opponent_started: bool, messages: list[dict], playable: bool) -> str | None:
        """The state as SVG for `sftboot serve` (None: the conversation alone shows it); where `playable`, the elements a
        person may click carry `data-move`, the move each stands for."""
        return None

    def describe(self) -> str:
        """One line for people: which task, with which settings."""
        return f"{self.name} ({self.params.model_dump()})"


def game_specs(games: int, seed: int, p_min: float, p_max: float, num_groups: int = 1) -> list[GameSpec]:
    """Seeds and difficulties for a run, all drawn from the run's seed.

    The [p_min, p_max] range is cut into `num_groups` equal buckets and game i draws its p from
    bucket i mod num_groups, so any consecutive run of games spans every difficulty.
    """
    rng = random.Random(seed)
    width = (p_max - p_min) / num_groups
    specs = []
    for game_id in range(games):
        game_seed = rng.randrange(2**31)
        p = p_min + width * (game_id % num_groups + rng.random())
        specs.append(GameSpec(game_id=game_id, seed=game_seed, p=round(min(p, p_max), 6)))
    return specs
