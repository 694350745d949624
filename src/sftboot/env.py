"""The multi-turn tic-tac-toe environment every stage plays: teacher rollouts, validation replay, RL, eval.

One `TicTacToeEnv` is one game. Everything random in it (who starts, each opponent move) is drawn
from generators seeded by the game seed and the board, so replaying the same assistant messages
replays the same game bit for bit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sftboot import board as rules
from sftboot.answer import extract_move, is_well_formed, parse_cell

# Every message below shows the board with each empty cell's number, so the rules need not draw
# one: a short system prompt is ~70 fewer tokens in every game a small student trains on.
SYSTEM_PROMPT = (
    "You play tic-tac-toe as X against O. Cells are numbered 0-8, left to right, top to bottom. "
    "Get three X in a row to win. Each turn, take one empty cell: think briefly inside "
    "<think>...</think>, then give the cell inside <move>...</move>, for example <move>4</move>."
)
STARTED = "Game started. You are X."
OPPONENT_PLAYED = "Opponent (O) played at position {cell}."
INVALID_MOVE = "Invalid move."
FORMAT_FEEDBACK = "Please provide a move inside <move>...</move> tags."
TURN_LIMIT = "Turn limit reached."
ENDINGS = {"win": "You win!", "loss": "You lose!", "draw": "It's a draw!"}
OUTCOME_REWARD = {"win": 1.0, "draw": 0.5, "loss": 0.0}
FORMAT_WEIGHT = 0.2
INVALID_PENALTY = -0.1


@dataclass(frozen=True)
class GameSpec:
    """What fixes a game before any move: its id, its seed and the opponent's random-move probability."""

    game_id: int
    seed: int
    p: float


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
class Rewards:
    outcome: float
    format: float
    invalid: float

    @property
    def total(self) -> float:
        return self.outcome + FORMAT_WEIGHT * self.format + self.invalid


@dataclass
class TicTacToeEnv:
    """One game: `messages` holds the conversation so far; `step` takes the model's answer."""

    spec: GameSpec
    max_turns: int = 8
    opponent: Callable[[str, int, float], int] = opponent_move  # (board, seed, p) -> O's cell
    board: str = rules.EMPTY_BOARD
    messages: list[dict] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)
    well_formed: list[bool] = field(default_factory=list)
    invalid_moves: int = 0
    outcome: str | None = None
    capped: bool = False
    opponent_started: bool | None = None  # None: the seed's coin decides; exact evaluation sets it
    forfeit_invalid: bool = False  # an invalid answer loses the game instead of earning a retry (an RL option)

    def __post_init__(self) -> None:
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        if self.opponent_started is None:
            self.opponent_started = opponent_starts(self.spec.seed)
        status = STARTED
        if self.opponent_started:
            status = self._opponent_turn()
        self._say(status)

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
            status = f"{status} {TURN_LIMIT}".strip()
        if self.done:
            status = f"{status} {ENDINGS[self.outcome]}".strip()
        self._say(status)

    def rewards(self) -> Rewards:
        fraction = sum(self.well_formed) / len(self.well_formed) if self.well_formed else 0.0
        return Rewards(
            outcome=OUTCOME_REWARD[self.outcome or "loss"],
            format=fraction,
            invalid=INVALID_PENALTY if self.invalid_moves else 0.0,
        )

    def _apply(self, answer: str) -> str:
        move = extract_move(answer)
        cell = parse_cell(move) if move is not None else None
        if cell is None or self.board[cell] != " ":
            self.invalid_moves += 1
            if self.forfeit_invalid:
                self.outcome = "loss"
            return FORMAT_FEEDBACK if move is None else INVALID_MOVE
        self._play(cell, "X")
        if self._settle():
            return ""
        return self._opponent_turn()

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


def replay(spec: GameSpec, answers: list[str], max_turns: int) -> TicTacToeEnv:
    """Play the recorded assistant answers again; the environment must produce the same game."""
    env = TicTacToeEnv(spec, max_turns=max_turns)
    for answer in answers:
        if env.done:
            raise ValueError("the game ended before all recorded answers were played")
        env.step(answer)
    return env


def game_specs(games: int, seed: int, p_min: float, p_max: float, num_groups: int = 1) -> list[GameSpec]:
    """Seeds and opponent strengths for a run, all drawn from the run's seed.

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
