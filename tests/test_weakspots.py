"""Weak spots: where an exactly evaluated student loses reward, as positions RL games start from."""

import polars as pl
import pytest

from sftboot.core.config import WeakSpotParams
from sftboot.engine.environment import GameSpec
from sftboot.envs import builtin
from sftboot.envs.tictactoe.teacher import ScriptedTeacher, board_from_text
from sftboot.evaluation.run import evaluate
from sftboot.training.weakspots import INVALID_COST, WeakSpots, passes_through, weak_spots

HABIT = ScriptedTeacher(skill=1.0, lookahead=0.0)  # the scripted teacher's habit: blind to forks
TICTACTOE = builtin("tictactoe", max_turns=8)


@pytest.fixture(scope="module")
def habit_spots():
    evaluation = evaluate(TICTACTOE, HABIT, ["random", "optimal"], games=1, seed=0, batch_size=64)
    return evaluation, weak_spots(TICTACTOE, evaluation.games, evaluation.moves, limit=12, seed=0)


def test_a_spot_replays_the_conversation_where_the_habit_gives_reward_away(habit_spots):
    evaluation, spots = habit_spots
    assert len(spots) == 12 and [spot.weight for spot in spots] == sorted((spot.weight for spot in spots), reverse=True)
    for spot in spots:
        episode = TICTACTOE.start(spot.spec)
        assert episode.messages == spot.messages and tuple(episode.moves) == spot.moves
        board = board_from_text(spot.messages[-1]["content"])
        assert spot.best and HABIT.choose(board, 0, 0) not in spot.best  # its own move is not among the best
    fork = [spot for spot in spots if board_from_text(spot.messages[-1]["content"]) == "O   X  O "]
    assert fork and fork[0].spec.p == 0.0  # O on 0 and 7, X centre: the habit's corner lets the optimal O fork


def test_an_invalid_answer_is_a_spot_weighted_by_its_reach():
    class Slipping:
        policy_id, deterministic = "slipping", True

        def respond(self, conversations, seeds):
            from sftboot.engine.policy import Reply

            return [
                Reply(text="<move>4</move>" if len(messages) == 2 else f"<move>{HABIT.choose(board_from_text(messages[-1]['content']), 0, 0)}</move>")
                for messages in conversations
            ]

    evaluation = evaluate(TICTACTOE, Slipping(), ["optimal"], games=1, seed=0, batch_size=64)
    invalid = evaluation.moves.filter(pl.col("cell").is_null())  # O opened in the centre: 4 is taken
    spots = weak_spots(TICTACTOE, evaluation.games, evaluation.moves, limit=50, seed=0)
    slip = [spot for spot in spots if spot.moves == (4,)]
    assert invalid.height == 1 and len(slip) == 1 and slip[0].weight == pytest.approx(invalid["reach"][0] * INVALID_COST)


def test_without_judged_moves_the_lines_not_won_restart_at_their_opening():
    mastermind = builtin("mastermind")
    lines = pl.DataFrame({"seed": [0, 1, 2], "p": [0.0, 0.0, 0.0], "probability": [0.2, 0.5, 0.3], "reward_outcome": [1.0, 0.0, 0.0]})
    moves = pl.DataFrame(schema={"reach": pl.Float64})
    spots = weak_spots(mastermind, lines, moves, limit=5, seed=0)
    assert [spot.spec.seed for spot in spots] == [1, 2] and [spot.weight for spot in spots] == [0.5, 0.3]
    assert all(spot.messages == mastermind.episode(spot.spec).messages and not spot.spec.opening for spot in spots)


def test_groups_draw_spots_reproducibly_and_in_the_share_asked(habit_spots):
    _, spots = habit_spots

    def draws(share):
        weak = WeakSpots(spots, WeakSpotParams(share=share, limit=12, refresh_every=10), TICTACTOE)
        return [weak.draw(0, step, group) for step in range(50) for group in range(4)]

    assert all(spot is None for spot in draws(0.0)) and all(spot is not None for spot in draws(1.0))
    half = draws(0.5)
    assert half == draws(0.5) and 60 < sum(spot is not None for spot in half) < 140


def test_a_game_passes_through_a_spot_only_from_the_same_opener_and_moves(habit_spots):
    _, spots = habit_spots
    spot = spots[0]
    assert passes_through([*spot.moves, 3], spot.opponent_started, spot)
    assert not passes_through(list(spot.moves), spot.opponent_started, spot)  # the game ended there: no answer given
    assert not passes_through([*spot.moves, 3], not spot.opponent_started, spot)


def test_an_opening_keeps_its_retries_and_forfeit_applies_after_it():
    spec = GameSpec(0, seed=3, p=0.0, opening=("<move>9</move>",))
    episode = TICTACTOE.start(spec, forfeit_invalid=True)
    assert episode.invalid_moves == 1 and not episode.done and episode.forfeit_invalid
    episode.step("<move>9</move>")
    assert episode.done and episode.outcome == "loss"
