"""Nim in one file: the worked example of docs/environments.md (the tests run it).

A pile of stones; each turn a player takes 1 to 3; whoever takes the last stone wins. The student
moves first; the opponent plays a random legal move with probability p, else the winning move (leave
a multiple of 4) when there is one. Use it with:

    env:
      name: nim
      source: docs/examples/nim.py
      nim: {class: docs/examples/nim.py:Nim, max_turns: 8, stones: 15}
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from sftboot.envs import Environment, Episode, GameSpec, Reply, format_answer

SYSTEM_PROMPT = (
    "You play Nim against an opponent. Players take turns taking 1, 2 or 3 stones from the pile; "
    "whoever takes the last stone wins. Think briefly inside <think>...</think>, then give how many "
    "stones you take inside <move>...</move>, for example <move>2</move>."
)


class NimParams(BaseModel):
    """The section `env.nim`: every key required, so params.yaml says what a run played."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_turns: int = Field(ge=1, description="answers before the game ends as a loss")
    stones: int = Field(ge=1, description="stones on the pile at the start")


def best_take(pile: int) -> int | None:
    """The take that leaves a multiple of 4 (a lost pile for whoever moves next); None when there is none."""
    return pile % 4 or None


@dataclass
class NimEpisode(Episode):
    spec: GameSpec
    max_turns: int
    pile: int

    def __post_init__(self) -> None:
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        self._say("Game started.")

    def parse(self, move: str) -> int | None:
        return int(move) if move in ("1", "2", "3") else None

    def legal(self, action: int) -> bool:
        return action <= self.pile

    def play(self, action: int) -> str:
        self._take(action)
        if self.done:
            return f"You took {action}."
        rng = random.Random(f"{self.spec.seed}:{self.pile}")  # the opponent's draw depends on the seed and the pile only
        reply = rng.randint(1, min(3, self.pile)) if rng.random() < self.spec.p else best_take(self.pile) or 1
        self._take(reply)
        if self.done:  # the opponent took the last stone
            self.outcome = "loss"
        return f"You took {action}. Opponent took {reply}."

    def _take(self, stones: int) -> None:
        self.pile -= stones
        self.moves.append(stones)
        if self.pile == 0:
            self.outcome = "win"

    def random_answer(self, rng: random.Random) -> str:
        return f"<move>{rng.randint(1, min(3, self.pile))}</move>"

    def _say(self, status: str) -> None:
        text = f"{status}\n\nStones left: {self.pile}"
        if not self.done:
            text += "\nYour turn."
        self.messages.append({"role": "user", "content": text})


class NimTeacher:
    """Plays the winning take with probability `skill` (if `lookahead` lets it see one), else a random take."""

    def __init__(self, skill: float, lookahead: float) -> None:
        self.skill, self.lookahead = skill, lookahead
        self.policy_id = f"nim-scripted:skill={skill},lookahead={lookahead}"

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        replies = []
        for messages, seed in zip(conversations, seeds, strict=True):
            pile = int(messages[-1]["content"].split("Stones left: ")[1].split()[0])
            rng = random.Random(f"teacher:{seed}:{pile}")
            best = best_take(pile) if rng.random() < self.lookahead else None
            take = best if best and rng.random() < self.skill else rng.randint(1, min(3, pile))
            why = f"Taking {take} leaves {pile - take}, a multiple of 4." if take == best else f"I take {take}."
            replies.append(Reply(text=format_answer(why, take)))
        return replies


class Nim(Environment):
    name = "nim"
    section = NimParams
    suites = {"random": 1.0, "optimal": 0.0}  # named settings: the difficulty p of each
    suite_titles = {"random": "a random opponent (p = 1)", "optimal": "the optimal opponent (p = 0)"}

    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> NimEpisode:
        return NimEpisode(spec, self.max_turns, self.params.stones, forfeit_invalid=forfeit_invalid)

    def scripted_teacher(self, skill: float, lookahead: float) -> NimTeacher:
        return NimTeacher(skill, lookahead)
