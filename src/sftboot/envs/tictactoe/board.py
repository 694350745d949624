"""Tic-tac-toe board rules and minimax: the one place that knows what a legal, won or optimal move is.

A board is a 9-character string of 'X', 'O' and ' ' (cells 0-8, row-major), so positions are
hashable and minimax can be memoised over the whole game tree (a few thousand positions).
"""

from __future__ import annotations

from functools import cache

EMPTY_BOARD = " " * 9
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
CENTRE = 4
CORNERS = (0, 2, 6, 8)


def other(player: str) -> str:
    return "O" if player == "X" else "X"


def free_cells(board: str) -> list[int]:
    return [i for i, cell in enumerate(board) if cell == " "]


def marks_played(moves: list[int], opponent_started: bool) -> list[tuple[int, str]]:
    """(cell, mark) in the order played: the marks alternate from whoever started (O is the opponent)."""
    first, second = ("O", "X") if opponent_started else ("X", "O")
    return [(cell, first if i % 2 == 0 else second) for i, cell in enumerate(moves)]


def place(board: str, cell: int, player: str) -> str:
    if board[cell] != " ":
        raise ValueError(f"cell {cell} is taken")
    return board[:cell] + player + board[cell + 1 :]


def winner(board: str) -> str | None:
    for a, b, c in LINES:
        if board[a] != " " and board[a] == board[b] == board[c]:
            return board[a]
    return None


def is_terminal(board: str) -> bool:
    return winner(board) is not None or " " not in board


def render(board: str) -> str:
    """Three rows `X0 | O1 | 2` split by dashes: every cell shows its index, a taken one after its mark.

    A taken cell that carries its index is one token (`O1`) that says which cell it is, so a small
    student sees a line as three tokens instead of working out where each `O` stands from the separators.
    """
    cells = [f"{cell}{i}" if cell != " " else str(i) for i, cell in enumerate(board)]
    rows = [" | ".join(cells[r * 3 : r * 3 + 3]) for r in range(3)]
    return f"\n{'-' * 9}\n".join(rows)


@cache
def _value(board: str, to_move: str, me: str) -> int:
    """Minimax value for `me`: a win scores 1 + free cells left, a loss -1 - free cells, a draw 0."""
    won = winner(board)
    free = board.count(" ")
    if won is not None:
        return (1 + free) if won == me else (-1 - free)
    if free == 0:
        return 0
    values = [_value(place(board, cell, to_move), other(to_move), me) for cell in free_cells(board)]
    return max(values) if to_move == me else min(values)


def move_values(board: str, player: str) -> dict[int, int]:
    """Minimax value of every free cell for `player`, who is to move."""
    return {cell: _value(place(board, cell, player), other(player), player) for cell in free_cells(board)}


def optimal_moves(board: str, player: str) -> list[int]:
    """All moves reaching the best minimax score: callers must break ties, never this function."""
    values = move_values(board, player)
    best = max(values.values())
    return [cell for cell, value in values.items() if value == best]


def winning_cells(board: str, player: str) -> list[int]:
    """Free cells that complete a line of `player` right now."""
    return [cell for cell in free_cells(board) if winner(place(board, cell, player)) == player]


def creates_fork(board: str, cell: int, player: str) -> bool:
    """Playing `cell` leaves `player` two different immediate wins."""
    return len(winning_cells(place(board, cell, player), player)) >= 2
