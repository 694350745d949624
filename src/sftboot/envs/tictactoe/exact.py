"""Tic-tac-toe's exact evaluation of a deterministic policy: every line a game can take, each with its probability.

A greedy student answers the same conversation the same way every time, so the only chance in a
game is the coin for who starts and the opponent's replies. Expanding both, and answering all open
lines of one depth in one batch, gives the outcome distribution itself instead of a sample of it.
Expectimax over the same opponent gives what the best possible policy reaches, and what each of
the policy's moves gives up.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache

import polars as pl
from tqdm import tqdm

from sftboot.engine.environment import OUTCOMES, Episode, GameSpec
from sftboot.engine.exact import LINE_SCHEMA, MOVE_SCHEMA
from sftboot.engine.policy import Policy
from sftboot.engine.rollout import LiveGame
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv, opponent_distribution

TOLERANCE = 1e-12  # expected rewards closer than this are equal: sums of the same fractions in another order


def _final(board: str) -> tuple[float, float, float]:
    won = rules.winner(board)
    return (1.0, 0.0, 0.0) if won == "X" else (0.0, 0.0, 1.0) if won == "O" else (0.0, 1.0, 0.0)


def score(outcome: tuple[float, float, float]) -> float:
    """Expected outcome reward of (win, draw, loss) probabilities."""
    return sum(Episode.OUTCOME_REWARD[name] * probability for name, probability in zip(OUTCOMES, outcome))


@cache
def move_outcome(board: str, cell: int, p: float) -> tuple[float, float, float]:
    """(win, draw, loss) probabilities after X plays `cell`, then the opponent of strength p, then X's best play."""
    after = rules.place(board, cell, "X")
    if rules.is_terminal(after):
        return _final(after)
    total = [0.0, 0.0, 0.0]
    for reply, probability in opponent_distribution(after, p).items():
        then = rules.place(after, reply, "O")
        for i, value in enumerate(_final(then) if rules.is_terminal(then) else best_outcome(then, p)):
            total[i] += probability * value
    return tuple(total)


@cache
def best_outcome(board: str, p: float) -> tuple[float, float, float]:
    """Expectimax with X to move: the highest expected outcome reward, ties to more wins."""
    return max((move_outcome(board, cell, p) for cell in rules.free_cells(board)), key=lambda o: (score(o), o[0]))


def ceiling(p: float) -> dict[str, float]:
    """Win, draw and loss % of the best possible policy against the opponent of strength p, the coin included."""
    empty = rules.EMPTY_BOARD
    opened = [(probability, best_outcome(rules.place(empty, cell, "O"), p)) for cell, probability in opponent_distribution(empty, p).items()]
    return {name: round(100 * (0.5 * best_outcome(empty, p)[i] + 0.5 * sum(pr * outcome[i] for pr, outcome in opened)), 4) for i, name in enumerate(OUTCOMES)}


def _sign(value: int) -> int:
    """The outcome a minimax value stands for (1 win, 0 draw, -1 loss), however fast it comes."""
    return (value > 0) - (value < 0)


def keeps_value(board: str, cell: int) -> bool:
    """Whether X's legal move at `cell` keeps the position's minimax outcome."""
    values = rules.move_values(board, "X")
    return _sign(values[cell]) == _sign(max(values.values()))


def _judge(board: str, cell: int, p: float) -> dict:
    """How a legal move compares with the best ones: minimax outcome kept, expectimax regret."""
    scores = {free: score(move_outcome(board, free, p)) for free in rules.free_cells(board)}
    best = max(scores.values())
    regret = best - scores[cell]
    return {
        "keeps_value": keeps_value(board, cell),
        "regret": regret if regret > TOLERANCE else 0.0,
        "best_cells": [free for free, value in scores.items() if best - value <= TOLERANCE],
    }


@dataclass
class _Line:
    game: LiveGame
    probability: float


def _plays(cell: int):
    return lambda board, seed, p: cell


def _openings(p: float, max_turns: int) -> list[_Line]:
    spec = GameSpec(game_id=0, seed=0, p=p)
    lines = [_Line(LiveGame(TicTacToeEnv(spec, max_turns=max_turns, opponent_started=False)), 0.5)]
    for cell, probability in opponent_distribution(rules.EMPTY_BOARD, p).items():
        env = TicTacToeEnv(spec, max_turns=max_turns, opponent=_plays(cell), opponent_started=True)
        lines.append(_Line(LiveGame(env), 0.5 * probability))
    return lines


def _branches(line: _Line, reply) -> list[_Line]:
    """The line after the policy's reply, once for each way the opponent can answer it."""
    faced: dict[int, float] = {}

    def first_reply(board: str, seed: int, p: float) -> int:
        faced.update(opponent_distribution(board, p))
        return next(iter(faced))

    first = copy.deepcopy(line.game)
    first.env.opponent = first_reply
    first.take(reply)
    if not faced:  # an invalid answer, or a move that ended the game
        return [_Line(first, line.probability)]
    cells = list(faced)
    branches = [_Line(first, line.probability * faced[cells[0]])]
    for cell in cells[1:]:
        game = copy.deepcopy(line.game)
        game.env.opponent = _plays(cell)
        game.take(reply)
        branches.append(_Line(game, line.probability * faced[cell]))
    return branches


def _move_row(opponent: str, line: _Line, answer: str, after: TicTacToeEnv) -> dict:
    before = line.game.env
    legal = after.invalid_moves == before.invalid_moves
    cell = after.moves[len(before.moves)] if legal else None
    judged = _judge(before.board, cell, before.spec.p) if legal else {"keeps_value": None, "regret": None, "best_cells": None}
    return {
        "opponent": opponent,
        "reach": line.probability,
        "board": before.board,
        "turn": before.turns + 1,
        "history": before.messages,
        "answer": answer,
        "cell": cell,
    } | judged


def play_every_line(policy: Policy, opponent: str, p: float, max_turns: int, batch_size: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every line the deterministic `policy` plays against the opponent of strength p, one depth at a time.

    Returns the finished lines (game rows with their probability) and every answer the policy gave,
    with the probability of reaching it and how it compares with the best moves.
    """
    open_lines, finished, moves = _openings(p, max_turns), [], []
    bar = tqdm(desc=f"{policy.policy_id} vs {opponent}, every line", unit="line", disable=None)
    while open_lines:
        deeper = []
        for start in range(0, len(open_lines), batch_size):
            chunk = open_lines[start : start + batch_size]
            replies = policy.respond([line.game.env.messages for line in chunk], [0] * len(chunk))
            for line, reply in zip(chunk, replies, strict=True):
                if hasattr(policy, "finish"):  # every branch continues from a copy of this conversation
                    policy.finish(line.game.env.messages)
                branches = _branches(line, reply)
                moves.append(_move_row(opponent, line, reply.text, branches[0].game.env))
                for branch in branches:
                    if branch.game.env.done:
                        finished.append(branch)
                        bar.update(1)
                    else:
                        deeper.append(branch)
        open_lines = deeper
    bar.close()
    rows = [{"opponent": opponent, "probability": line.probability} | line.game.row(policy.policy_id) | {"game_id": i} for i, line in enumerate(finished)]
    return pl.DataFrame(rows, schema=LINE_SCHEMA), pl.DataFrame(moves, schema=MOVE_SCHEMA)
