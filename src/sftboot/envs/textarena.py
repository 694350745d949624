"""TextArena's single-player games as sftboot environments: `env.name: textarena`, `env.textarena.game: <id>`.

TextArena (pip install textarena) keeps ~100 text games behind one small API (reset, step,
get_observation, close), and its single-player ones need no opponent model. The adapter keeps the
answer format sftboot teaches (`<think>…</think><move>…</move>`) and hands the game the move in its
own brackets (`<move>7</move>` is the action `[7]`). The game judges legality and scores the episode:
its reward in [0, 1] is the outcome reward, 1 is a win. TextArena draws from Python's global random
generator; each episode keeps its own generator state, so batched games replay bit for bit.
Games that download data on first use (Wordle's word lists) do not run offline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from sftboot.core.answer import extract_move
from sftboot.core.config import Section
from sftboot.core.errors import UserError
from sftboot.engine.environment import FORMAT_FEEDBACK, Environment, Episode, GameSpec, Rewards

SYSTEM_PROMPT = (
    "You play a text game. Each turn, think briefly inside <think>...</think>, then give your action "
    "inside <move>...</move>, without the game's square brackets, for example <move>7</move>."
)


class TextArenaParams(Section):
    game: str = Field(min_length=1, description="a TextArena single-player game id, e.g. GuessTheNumber-v0")
    max_turns: int = Field(ge=1, le=100, description="assistant turns before the game ends as a loss")


def make_game(game_id: str):
    """The unwrapped TextArena game: the adapter reads its observations and rewards itself."""
    try:
        import textarena
    except ImportError:
        raise UserError("env.textarena needs TextArena: pip install textarena") from None
    try:
        game = textarena.make(game_id)
    except ValueError as error:
        raise UserError(f"env.textarena.game: {error}; pick a single-player game id such as GuessTheNumber-v0") from None
    while isinstance(game, textarena.Wrapper):
        game = game.env
    return game


@dataclass
class TextArenaEpisode(Episode):
    spec: GameSpec
    max_turns: int
    game_id: str
    reward: float = 0.0  # the game's own score once it is over
    game: Any = field(default=None, repr=False)
    rng_state: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.game = make_game(self.game_id)
        self.rng_state = random.Random(self.spec.seed).getstate()
        self._in_game(lambda: self.game.reset(num_players=1, seed=self.spec.seed))
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        self._say(self._news())

    def _in_game(self, call):
        """Run a call into the game on this episode's own stream of the global random generator."""
        outside = random.getstate()
        random.setstate(self.rng_state)
        try:
            return call()
        finally:
            self.rng_state = random.getstate()
            random.setstate(outside)

    def _news(self) -> str:
        """What the game said since the last answer; the player's own action, echoed back, left out."""
        _, observations = self.game.get_observation()
        return "\n".join(message.strip() for sender, message, _ in observations if sender != 0).strip()

    def _apply(self, answer: str) -> str:
        move = extract_move(answer)
        if move is None or not move:
            return self._invalid(FORMAT_FEEDBACK)
        action = move if move.startswith("[") else f"[{move}]"
        state = self.game.state
        turn = state.turn
        done, _ = self._in_game(lambda: self.game.step(action))
        news = self._news()
        invalid = state.turn == turn or state.game_info[0].get("invalid_move", False)
        self.moves.append(int(move) if move.isdigit() else -1)
        if invalid:
            self.invalid_moves += 1
            if self.forfeit_invalid and not done:
                self.outcome = "loss"
        if done:
            rewards = self._in_game(self.game.close)
            rewards = rewards[0] if isinstance(rewards, tuple) else rewards
            self.reward = max(0.0, min(1.0, float(rewards[0])))
            self.outcome = "win" if self.reward >= 1.0 else "loss"
        return news

    def _invalid(self, feedback: str) -> str:
        self.invalid_moves += 1
        if self.forfeit_invalid:
            self.outcome = "loss"
        return feedback

    def rewards(self) -> Rewards:
        base = super().rewards()
        return Rewards(outcome=self.reward if not self.capped else 0.0, format=base.format, invalid=base.invalid)

    def _say(self, status: str) -> None:
        text = status if self.done else f"{status}\n\nTurns left: {self.max_turns - self.turns}\nYour turn."
        self.messages.append({"role": "user", "content": text})


class TextArena(Environment):
    name = "textarena"
    section = TextArenaParams
    suites = {"default": 0.0}  # the game's own seeded episodes; TextArena games have no difficulty knob in common
    suite_titles = {"default": "the game's seeded episodes"}
    headline = (("default", "win"),)

    def __init__(self, params: TextArenaParams) -> None:
        super().__init__(params)
        make_game(params.game)  # a bad id or a missing install is refused before any stage work

    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> TextArenaEpisode:
        return TextArenaEpisode(spec, self.max_turns, self.params.game, forfeit_invalid=forfeit_invalid)
