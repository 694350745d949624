"""Exact evaluation: every line a deterministic policy can play, each with its probability."""

import json
import subprocess
import sys
from functools import cache

import polars as pl
import pytest

from sftboot.engine.metrics import wilson_interval
from sftboot.engine.policy import Reply
from sftboot.envs import builtin
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.exact import ceiling
from sftboot.envs.tictactoe.game import opponent_distribution, opponent_move
from sftboot.envs.tictactoe.report import costliest_mistakes, losing_lines
from sftboot.envs.tictactoe.teacher import ScriptedTeacher, board_from_text
from sftboot.evaluation.run import evaluate

PERFECT = ScriptedTeacher(skill=1.0, lookahead=1.0)  # minimax moves, ties broken by a fixed habit
HABIT = ScriptedTeacher(skill=1.0, lookahead=0.0)  # the habit alone: blind to forks


def _outcomes_by_hand(policy: ScriptedTeacher, p: float) -> dict[str, float]:
    """The policy's outcome probabilities, counted over boards without the environment or the exact evaluator."""

    def replies(board: str) -> dict[int, float]:
        free = rules.free_cells(board)
        optimal = rules.optimal_moves(board, "O")
        return {cell: p / len(free) + (1 - p) * (cell in optimal) / len(optimal) for cell in free}

    @cache
    def x_to_move(board: str) -> tuple[float, float, float]:
        after = rules.place(board, policy.choose(board, 0, 0), "X")
        if rules.is_terminal(after):
            return end(after)
        total = (0.0, 0.0, 0.0)
        for cell, probability in replies(after).items():
            then = rules.place(after, cell, "O")
            sub = end(then) if rules.is_terminal(then) else x_to_move(then)
            total = tuple(t + probability * s for t, s in zip(total, sub))
        return total

    def end(board: str) -> tuple[float, float, float]:
        won = rules.winner(board)
        return (1.0, 0.0, 0.0) if won == "X" else (0.0, 0.0, 1.0) if won == "O" else (0.0, 1.0, 0.0)

    first = x_to_move(rules.EMPTY_BOARD)
    opened = [(pr, x_to_move(rules.place(rules.EMPTY_BOARD, cell, "O"))) for cell, pr in replies(rules.EMPTY_BOARD).items()]
    return {name: 100 * (0.5 * first[i] + 0.5 * sum(pr * o[i] for pr, o in opened)) for i, name in enumerate(("win", "draw", "loss"))}


@pytest.mark.parametrize("policy", [PERFECT, HABIT], ids=["minimax", "habit"])
def test_exact_rates_are_the_policys_true_outcome_probabilities(policy):
    evaluation = evaluate(builtin("tictactoe", max_turns=8), policy, ["random", "optimal"], games=1, seed=0, batch_size=64)
    for opponent, p in (("random", 1.0), ("optimal", 0.0)):
        result = evaluation.metrics[opponent]
        assert result["kind"] == "exact" and "ci95_low" not in result["win"]
        lines = evaluation.games.filter(pl.col("opponent") == opponent)
        assert result["lines"] == lines.height and lines["probability"].sum() == pytest.approx(1.0, abs=1e-12)
        expected = _outcomes_by_hand(policy, p)
        for outcome in ("win", "draw", "loss"):
            assert result[outcome]["pct"] == pytest.approx(expected[outcome], abs=1e-3), (opponent, outcome)
    if policy is PERFECT:
        assert evaluation.metrics["optimal"]["loss"]["pct"] == 0 and evaluation.metrics["random"]["loss"]["pct"] == 0
        assert evaluation.metrics["optimal"]["draw"]["pct"] == 100 and evaluation.metrics["optimal"]["move_quality"]["pct"] == 100


def test_exact_rates_agree_with_a_large_sampled_evaluation():
    exact = evaluate(builtin("tictactoe", max_turns=8), HABIT, ["random", "optimal"], games=1, seed=0, batch_size=64).metrics
    sampled = evaluate(builtin("tictactoe", max_turns=8), HABIT, ["random", "optimal"], games=3000, seed=7, batch_size=3000, exact=False).metrics
    for opponent in ("random", "optimal"):
        assert sampled[opponent]["kind"] == "sampled"
        for rate in ("win", "draw", "loss"):
            successes = round(sampled[opponent][rate]["pct"] * 30)
            low, high = wilson_interval(successes, 3000, z=3.29)  # 99.9 %: six rates stay inside together
            assert 100 * low <= exact[opponent][rate]["pct"] <= 100 * high, (opponent, rate)
    assert exact["optimal"]["loss"]["pct"] > 0  # the habit walks into forks, so the check above compares something


class _RetryFirst:
    """Answers an occupied or missing cell on its first turn of every game, then plays like PERFECT."""

    policy_id = "retry-first"
    deterministic = True

    def respond(self, conversations, seeds):
        replies = []
        for messages in conversations:
            if not any(message["role"] == "assistant" for message in messages):
                replies.append(Reply(text="<think>anything</think>\n<move>9</move>"))
            else:
                board = board_from_text(messages[-1]["content"])
                replies.append(Reply(text=f"<think>best</think>\n<move>{PERFECT.choose(board, 0, 0)}</move>"))
        return replies


def test_an_invalid_answer_and_its_retry_are_a_line_like_any_other():
    perfect = evaluate(builtin("tictactoe", max_turns=8), PERFECT, ["random", "optimal"], games=1, seed=0, batch_size=64)
    retrying = evaluate(builtin("tictactoe", max_turns=8), _RetryFirst(), ["random", "optimal"], games=1, seed=0, batch_size=64)
    for opponent in ("random", "optimal"):
        ours, theirs = retrying.metrics[opponent], perfect.metrics[opponent]
        assert ours["invalid_games"]["pct"] == pytest.approx(100) and theirs["invalid_games"]["pct"] == 0
        assert ours["lines"] == theirs["lines"]
        for outcome in ("win", "draw", "loss"):
            assert ours[outcome]["pct"] == pytest.approx(theirs[outcome]["pct"], abs=1e-9)
    lines = retrying.games.filter(pl.col("opponent") == "random")
    assert (lines["invalid_moves"] == 1).all() and lines["probability"].sum() == pytest.approx(1.0)
    retries = retrying.moves.filter((pl.col("opponent") == "random") & pl.col("cell").is_null())
    assert retries.height == 10  # one per opening: X starts, or O takes one of 9 cells


def test_move_quality_and_mistakes_find_the_habits_blind_spot():
    evaluation = evaluate(builtin("tictactoe", max_turns=8), HABIT, ["random", "optimal"], games=1, seed=0, batch_size=64)
    assert evaluation.metrics["optimal"]["move_quality"]["pct"] < 100
    mistakes = costliest_mistakes(evaluation.moves.filter(pl.col("opponent") == "optimal"), top=20)
    fork = mistakes.filter(pl.col("board") == "O   X  O ")  # O on 0 and 7, X centre: the habit's corner 2 lets O fork
    assert fork.height == 1 and fork["cell"][0] == 2 and 2 not in fork["best_cells"][0] and not fork["keeps_value"][0]
    assert mistakes["cost"].is_sorted(descending=True)
    lost = losing_lines(evaluation.games, "optimal", top=3)
    assert lost.height == 3 and (lost["outcome"] == "loss").all() and lost["probability"].is_sorted(descending=True)


def test_the_ceiling_is_expectimax_over_the_environments_opponent():
    assert ceiling(0.0) == {"win": 0.0, "draw": 100.0, "loss": 0.0}
    best = ceiling(1.0)
    assert sum(best.values()) == pytest.approx(100)
    perfect = _outcomes_by_hand(PERFECT, 1.0)
    assert best["win"] + best["draw"] / 2 > perfect["win"] + perfect["draw"] / 2  # minimax is not the best against a random player
    assert best["win"] > 96


@pytest.mark.parametrize("board", ["         ", "X   O    ", "XO  O   X"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_the_opponent_distribution_is_what_the_opponent_draws_from(board, p):
    distribution = opponent_distribution(board, p)
    assert sum(distribution.values()) == pytest.approx(1.0)
    draws = [opponent_move(board, seed, p) for seed in range(4000)]
    assert set(draws) <= set(distribution)
    for cell, probability in distribution.items():
        low, high = wilson_interval(draws.count(cell), len(draws), z=3.89)
        assert low <= probability <= high, (cell, probability)


def test_cli_eval_out_keeps_every_line(tmp_path):
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "sftboot.app.cli", "eval", "--model", "scripted", "--skill", "1", "--lookahead", "1", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "exact over" in result.stdout
    games = pl.read_parquet(out / "games.parquet")
    metrics = json.loads((out / "metrics.json").read_text())
    for opponent in ("random", "optimal"):
        lines = games.filter(pl.col("opponent") == opponent)
        assert lines.height == metrics[opponent]["lines"] and lines["probability"].sum() == pytest.approx(1.0)
    assert pl.read_parquet(out / "moves.parquet").height > 0


@pytest.mark.slow
def test_a_greedy_students_exact_rates_agree_with_its_sampled_games(tiny_sft_dir):
    from sftboot.evaluation.run import load_student_policy

    policy = load_student_policy(str(tiny_sft_dir), max_tokens_per_turn=24)
    exact = evaluate(builtin("tictactoe", max_turns=6), policy, ["random"], games=1, seed=0, batch_size=256)
    sampled = evaluate(builtin("tictactoe", max_turns=6), policy, ["random"], games=400, seed=3, batch_size=400, exact=False).metrics["random"]
    assert exact.games["probability"].sum() == pytest.approx(1.0)
    for rate in ("win", "draw", "loss", "invalid_games"):
        low, high = wilson_interval(round(sampled[rate]["pct"] * 4), 400, z=3.29)
        assert 100 * low <= exact.metrics["random"][rate]["pct"] <= 100 * high, rate
    # the student's own answers, in the lines it played
    answers = exact.games.explode("messages").unnest("messages").filter(pl.col("role") == "assistant")["content"]
    assert set(answers) == set(exact.moves["answer"])


def test_a_new_metric_is_one_registry_entry_reported_exactly_and_sampled(monkeypatch):
    """`sftboot.engine.metrics.METRICS` feeds the teacher stage and both kinds of evaluation: a figure added there
    from outside the package comes back from each, exact to four decimals, sampled with its interval."""
    from sftboot.engine.metrics import METRICS, Metric

    monkeypatch.setitem(METRICS, "quick_games", Metric(lambda games: games["turns"] <= 3, "games"))
    exact = evaluate(builtin("tictactoe", max_turns=8), HABIT, ["random"], games=1, seed=0, batch_size=64)
    sampled = evaluate(builtin("tictactoe", max_turns=8), HABIT, ["random"], games=400, seed=7, batch_size=400, exact=False).metrics["random"]
    lines = exact.games
    assert exact.metrics["random"]["quick_games"]["pct"] == pytest.approx(100 * lines.filter(pl.col("turns") <= 3)["probability"].sum(), abs=1e-4)
    assert sampled["quick_games"]["ci95_low"] <= sampled["quick_games"]["pct"] <= sampled["quick_games"]["ci95_high"]
    assert sampled["quick_games"]["pct"] == pytest.approx(exact.metrics["random"]["quick_games"]["pct"], abs=10)
