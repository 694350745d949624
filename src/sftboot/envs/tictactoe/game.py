"""One tic-tac-toe game as an `Episode`: the student plays X against an opponent of strength p.

Everything random in it (who starts, each opponent move) is drawn from generators seeded by the
game seed and the board, so replaying the same assistant messages replays the same game bit for bit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sftboot.engine.environment import Episode, GameSpec
from sftboot.envs.tictactoe import board as rules

# Every message below shows the board with each empty cell's number, so the rules need not draw
# one: a short system prompt is ~70 fewer tokens in every game a small student trains on.
SYSTEM_PROMPT = (
    "You play tic-tac-toe as X against O. Cells are numbered 0-8, left to right, top to bottom. "
    "Get three X in a row to win. Each turn, take one empty cell: think briefly inside "
    "<think>...</think>, then give the cell inside <move>...</move>, for example <move>4</move>."
)
STARTED = "Game started. You are X."
OPPONENT_PLAYED = "Opponent (O) played at position {cell}."


def opponent_move(board: str, seed: int, p: float) -> int:
    """With probability p a random free cell, else one of all minimax-optimal cells, uniformly."""
    rng = random.Random(f"{seed}:{board}")
    if rng.random() < p:
        return rng.choice(rules.free_cells(board))
    return rng.choice(rules.optimal_moves(board, "O"))


def opponent_distribution(board: str, p: float) -> dict[int, float]:
    """The probability of each of O's replies that `opponent_move` draws from, for exact evaluation."""
    free, optimal = rules.free_cells(board), rules.optimal_moves(board, "O")
    return {cell: p / len(free) + (1 - p) * (cell in optimal) / len(optimal) for cell in free if p > 0 or cell in optimal}


def opponent_starts(seed: int) -> bool:
    return random.Random(f"{seed}:start").random() < 0.5


@dataclass
class TicTacToeEnv(Episode):
    """One game: `messages` holds the conversation so far; `step` takes the model's answer."""

    spec: GameSpec
    max_turns: int = 8
    opponent: Callable[[str, int, float], int] = opponent_move  # (board, seed, p) -> O's cell
    board: str = rules.EMPTY_BOARD
    opponent_started: bool | None = field(default=None, kw_only=True)  # None: the seed's coin decides; exact evaluation sets it

    def __post_init__(self) -> None:
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        if self.opponent_started is None:
            self.opponent_started = opponent_starts(self.spec.seed)
        status = STARTED
        if self.opponent_started:
            status = self._opponent_turn()
        self._say(status)

    def parse(self, move: str) -> int | None:
        """A cell index 0-8 from the move text, or None when it names no cell."""
        return int(move) if len(move) == 1 and move in "012345678" else None

    def legal(self, action: int) -> bool:
        return self.board[action] == " "

    def play(self, action: int) -> str:
        self._play(action, "X")
        if self._settle():
            return ""
        return self._opponent_turn()

    def random_answer(self, rng: random.Random) -> str:
        return f"<move>{rng.choice(rules.free_cells(self.board))}</move>"

    def _opponent_turn(self) -> str:
        cell = self.opponent(self.board, self.spec.seed, self.spec.p)
        self._play(cell, "O")
        self._settle()
        return OPPONENT_PLAYED.format(cell=cell)

    def _play(self, cell: int, player: str) -> None:
        self.board = rules.place(self.board, cell, player)
        self.moves.append(cell)

    def _settle(self) -> bool:
        won = rules.winner(self.board)
        if won is not None:
            self.outcome = "win" if won == "X" else "loss"
        elif " " not in self.board:
            self.outcome = "draw"
        return self.done

    def _say(self, status: str) -> None:
        text = f"{status}\n\n{rules.render(self.board)}"
        if not self.done:
            text += f"\n\nAvailable positions: {rules.free_cells(self.board)}\nYour turn."
        self.messages.append({"role": "user", "content": text})
