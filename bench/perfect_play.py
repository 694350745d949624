"""Benchmark: how much room tic-tac-toe leaves above the teacher's habit, against the random opponent.

Prints, exactly (every line, the coin for who starts included), the win % of the best possible
policy (expectimax), of the best policy that never gives up a draw to perfect play (expectimax over
minimax-optimal moves only: what a student with 0 losses to the optimal opponent can reach at most),
and of the scripted teacher's two deterministic modes; then the positions where the habit gives up
most wins against that safe best, weighted by how often it reaches them.

    python bench/perfect_play.py [--top 8]
"""

import argparse
from functools import cache

from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.exact import _final, ceiling, move_outcome, score
from sftboot.envs.tictactoe.game import opponent_distribution
from sftboot.envs.tictactoe.teacher import _preference

RANDOM = 1.0  # the random opponent's p


@cache
def safe_outcome(board: str, cell: int) -> tuple[float, float, float]:
    """(win, draw, loss) after X plays `cell`, then the random opponent, then X's best minimax-optimal play."""
    after = rules.place(board, cell, "X")
    if rules.is_terminal(after):
        return _final(after)
    total = [0.0, 0.0, 0.0]
    for reply, probability in opponent_distribution(after, RANDOM).items():
        then = rules.place(after, reply, "O")
        for i, value in enumerate(_final(then) if rules.is_terminal(then) else safe_best(then)):
            total[i] += probability * value
    return tuple(total)


@cache
def safe_best(board: str) -> tuple[float, float, float]:
    return max((safe_outcome(board, cell) for cell in rules.optimal_moves(board, "X")), key=lambda o: (score(o), o[0]))


def habit(board: str) -> int:
    return min(rules.free_cells(board), key=lambda cell: _preference(board, cell))


def searched(board: str) -> int:
    return min(rules.optimal_moves(board, "X"), key=lambda cell: _preference(board, cell))


def walk(policy, visit) -> tuple[float, float, float]:
    """Play `policy` against the random opponent over every line; `visit(board, cell, reach)` sees each move."""
    totals = [0.0, 0.0, 0.0]

    def play(board: str, reach: float) -> None:
        if rules.is_terminal(board):
            for i, value in enumerate(_final(board)):
                totals[i] += reach * value
            return
        cell = policy(board)
        visit(board, cell, reach)
        after = rules.place(board, cell, "X")
        if rules.is_terminal(after):
            play(after, reach)
            return
        for reply, probability in opponent_distribution(after, RANDOM).items():
            play(rules.place(after, reply, "O"), reach * probability)

    play(rules.EMPTY_BOARD, 0.5)
    for opening, probability in opponent_distribution(rules.EMPTY_BOARD, RANDOM).items():
        play(rules.place(rules.EMPTY_BOARD, opening, "O"), 0.5 * probability)
    return tuple(round(100 * value, 2) for value in totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=8)
    top = parser.parse_args().top
    empty = rules.EMPTY_BOARD
    opened = [(probability, safe_best(rules.place(empty, cell, "O"))) for cell, probability in opponent_distribution(empty, RANDOM).items()]
    safe = [round(100 * (0.5 * safe_best(empty)[i] + 0.5 * sum(p * outcome[i] for p, outcome in opened)), 2) for i in range(3)]
    print("against the random opponent, exact: win / draw / loss %")
    print(f"  best possible (expectimax):             {tuple(round(value, 2) for value in ceiling(RANDOM).values())}")
    print(f"  best that never loses to perfect play:  {tuple(safe)}")
    given_up = {}

    def regret(board: str, cell: int, reach: float) -> None:
        mine = safe_outcome(board, cell)[0] if cell in rules.optimal_moves(board, "X") else move_outcome(board, cell, RANDOM)[0]
        given_up[board] = given_up.get(board, 0.0) + reach * (safe_best(board)[0] - mine)

    print(f"  the teacher's habit (no slips):         {walk(habit, regret)}")
    print(f"  the teacher's search (no slips):        {walk(searched, lambda *_: None)}")
    costly = sorted(((value, board) for board, value in given_up.items() if value > 1e-9), reverse=True)
    print(f"the habit gives up {100 * sum(v for v, _ in costly):.2f} win points in {len(costly)} positions; the costliest:")
    for value, board in costly[:top]:
        print(f"  {'/'.join(board[i : i + 3].replace(' ', '.') for i in (0, 3, 6))}  plays {habit(board)}  {100 * value:.2f} points")


if __name__ == "__main__":
    main()
