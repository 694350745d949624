"""Tic-tac-toe in `sftboot serve`: a person plays O against the model, and the board is drawn as SVG."""

from __future__ import annotations

from collections.abc import Callable

from sftboot.engine.environment import GameSpec
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv

CELL = 60  # pixels a side
COLOURS = {"X": "#1565c0", "O": "#c62828"}


def episode_against(person: Callable[[], str], person_first: bool, max_turns: int) -> TicTacToeEnv:
    """A game whose O moves are the person's; a move that names no free cell is refused with what to do instead."""

    def opponent(board: str, seed: int, p: float) -> int:
        move = person()
        if not (len(move) == 1 and move in "012345678"):
            raise ValueError(f"{move!r} is not a cell; pick a free one, 0-8")
        if board[int(move)] != " ":
            raise ValueError(f"cell {move} is taken; pick a free one")
        return int(move)

    return TicTacToeEnv(GameSpec(0, seed=0, p=0.0), max_turns=max_turns, opponent=opponent, opponent_started=person_first)


def picture(moves: list[int], opponent_started: bool, playable: bool) -> str:
    """The board with each mark's place in the game; free cells carry `data-move` where the person may play one."""
    marks = [""] * 9
    turns = [0] * 9
    for turn, (cell, mark) in enumerate(rules.marks_played(moves, opponent_started), start=1):
        marks[cell], turns[cell] = mark, turn
    board = "".join(mark or " " for mark in marks)
    free = set(rules.free_cells(board)) if playable and rules.winner(board) is None else set()
    cells = []
    for cell in range(9):
        x, y = cell % 3 * CELL, cell // 3 * CELL
        clickable = f' data-move="{cell}" style="cursor:pointer"' if cell in free else ""
        cells.append(
            f'<g data-cell="{cell}" data-mark="{marks[cell]}"{clickable}><rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="#fafafa" stroke="#888"/>'
            + (
                f'<text x="{x + CELL / 2}" y="{y + CELL * 0.68}" font-size="{CELL * 0.55}" font-weight="bold" text-anchor="middle" fill="{COLOURS[marks[cell]]}">{marks[cell]}</text>'
                f'<text x="{x + CELL - 4}" y="{y + 14}" font-size="11" text-anchor="end" fill="#666">{turns[cell]}</text>'
                if marks[cell]
                else ""
            )
            + "</g>"
        )
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * CELL}" height="{3 * CELL}" viewBox="0 0 {3 * CELL} {3 * CELL}">{"".join(cells)}</svg>'
