"""Tic-tac-toe's scripted teacher: a habit, a search it does not always run, and slips; no network and no key.

It reads the board from the conversation (as a model would). Its habit ranks cells win, block,
fork, centre, corner, edge; with probability `lookahead` it first narrows them to the minimax-optimal
ones, otherwise it plays the habit alone, which is blind to the opponent's forks (a systematic
weakness, like an LLM teacher's, that SFT copies and RL can fix); with probability 1 - `skill` it
slips to a random free cell instead. The fixed habit matters: a teacher that picks among ties at
random gives a small student nothing board-dependent to learn. Its `<think>` lists the cells where
X and O could win at once, then names what the chosen move really does.
"""

from __future__ import annotations

import random
import re

from sftboot.core.answer import format_answer
from sftboot.engine.policy import Reply
from sftboot.envs.tictactoe import board as rules

_ROW = re.compile(r"^(\S+) \| (\S+) \| (\S+)$", re.MULTILINE)


def board_from_text(text: str) -> str:
    """The last rendered board in a message, as a board string."""
    rows = _ROW.findall(text)[-3:]
    if len(rows) != 3:
        raise ValueError("no board in the message")
    return "".join(cell[0] if cell[0] in "XO" else " " for row in rows for cell in row)


def _preference(board: str, cell: int) -> tuple[int, int]:
    """Sort key: lower is preferred (win, block, fork, centre, corner, edge; then lowest index)."""
    if cell in rules.winning_cells(board, "X"):
        rank = 0
    elif cell in rules.winning_cells(board, "O"):
        rank = 1
    elif rules.creates_fork(board, cell, "X"):
        rank = 2
    elif cell == rules.CENTRE:
        rank = 3
    elif cell in rules.CORNERS:
        rank = 4
    else:
        rank = 5
    return rank, cell


def _cells(cells: list[int]) -> str:
    return ", ".join(map(str, cells)) or "none"


# What playing a cell does, by its rank in the teacher's preference (_preference)
REASONS = (
    "I can complete a line at {cell}, which wins.",
    "O threatens to win at {cell}, so I block it.",
    "Taking {cell} gives me two ways to win.",
    "The centre is free, so I take it.",
    "I take the corner {cell}.",
    "I take the edge {cell}.",
)


def facts(board: str) -> str:
    """What the board offers: the cells where X and where O would complete a line."""
    return f"Wins: {_cells(rules.winning_cells(board, 'X'))}. Threats: {_cells(rules.winning_cells(board, 'O'))}."


def explain(board: str, cell: int) -> str:
    """The board's facts, then what playing `cell` does: the move is written after the facts it
    depends on, so learning one tactic leaves the others' conditions intact."""
    rank, _ = _preference(board, cell)
    return f"{facts(board)} {REASONS[rank].format(cell=cell)}"


def states_the_facts(observation: str, answer: str) -> bool:
    """Whether the answer opens with the true facts of the board shown in `observation`."""
    return answer.startswith(f"<think>{facts(board_from_text(observation))}")


class ScriptedTeacher:
    """Its slips are drawn per game (from the game's seed), like a sampled LLM's: the same board
    gets the good move in most games, so its strength is an average, not a property of the seed."""

    def __init__(self, skill: float, lookahead: float = 1.0) -> None:
        self.skill = skill
        self.lookahead = lookahead
        self.policy_id = f"scripted:skill={skill}" + (f",lookahead={lookahead}" if lookahead < 1 else "")

    @property
    def deterministic(self) -> bool:
        """Without slips, and always or never searching, it plays each board one way."""
        return self.skill >= 1 and self.lookahead in (0.0, 1.0)

    def choose(self, board: str, turn: int, game_seed: int) -> int:
        rng = random.Random(f"teacher:{game_seed}:{board}:{turn}")
        if rng.random() < self.skill:
            searched = self.lookahead >= 1 or rng.random() < self.lookahead
            candidates = rules.optimal_moves(board, "X") if searched else rules.free_cells(board)
            return min(candidates, key=lambda cell: _preference(board, cell))
        return rng.choice(rules.free_cells(board))

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        replies = []
        for messages, game_seed in zip(conversations, seeds, strict=True):
            board = board_from_text(messages[-1]["content"])
            cell = self.choose(board, len(messages), game_seed)
            replies.append(Reply(text=format_answer(explain(board, cell), cell)))
        return replies


def reading_share(messages: list[dict]) -> float:
    """The share of a game's answers whose `Wins:` / `Threats:` are true of the board in the message before them."""
    answered = [(before["content"], after["content"]) for before, after in zip(messages, messages[1:]) if after["role"] == "assistant"]
    return sum(states_the_facts(*pair) for pair in answered) / len(answered) if answered else 0.0
