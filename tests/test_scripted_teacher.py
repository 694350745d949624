"""The scripted teacher: strong but imperfect, consistent habits, truthful reasoning."""

import re
from collections import Counter

import pytest

from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv
from sftboot.envs.tictactoe.teacher import ScriptedTeacher, board_from_text


def test_reads_the_board_from_the_conversation():
    env = TicTacToeEnv(game_specs(1, seed=2, p_min=1.0, p_max=1.0)[0])
    assert board_from_text(env.messages[-1]["content"]) == env.board


def test_perfect_skill_never_loses_and_low_skill_does():
    specs = game_specs(200, seed=0, p_min=0.0, p_max=0.0)
    perfect = play_games(builtin("tictactoe", max_turns=8), ScriptedTeacher(1.0), specs, batch_size=64)
    assert set(perfect["outcome"]) == {"draw"}
    sloppy = play_games(builtin("tictactoe", max_turns=8), ScriptedTeacher(0.9), specs, batch_size=64)
    draws = (sloppy["outcome"] == "draw").mean()
    assert 0.6 < draws < 0.9  # strong but imperfect, like the published teacher's 76 %


def test_without_lookahead_the_habit_walks_into_forks():
    board = "O...X..O.".replace(".", " ")  # O threatens a fork at 6; the habit's first corner is 2
    blind, searching = ScriptedTeacher(1.0, lookahead=0.0), ScriptedTeacher(1.0, lookahead=1.0)
    assert {blind.choose(board, 3, game_seed) for game_seed in range(20)} == {2}
    assert {searching.choose(board, 3, game_seed) for game_seed in range(20)} == {6}
    mixed = Counter(ScriptedTeacher(1.0, lookahead=0.5).choose(board, 3, game_seed) for game_seed in range(200))
    assert set(mixed) == {2, 6} and 70 < mixed[6] < 130  # drawn per game, like its slips
    assert searching.policy_id == "scripted:skill=1.0" and blind.policy_id == "scripted:skill=1.0,lookahead=0.0"


def test_same_board_same_habit():
    teacher = ScriptedTeacher(1.0)
    board = "    X    "[::-1].replace("X", "O")  # O in the centre: corners are optimal
    picks = Counter(teacher.choose(board, turn, game_seed) for turn in range(5) for game_seed in range(10))
    assert picks == Counter({0: 50})


def test_slips_are_drawn_per_game_not_per_board():
    teacher = ScriptedTeacher(0.5)
    picks = {teacher.choose(rules.EMPTY_BOARD, 2, game_seed) for game_seed in range(40)}
    assert len(picks) > 3  # the same opening board gets different moves in different games


def test_reasoning_is_true_to_the_board():
    games = play_games(builtin("tictactoe", max_turns=8), ScriptedTeacher(0.8), game_specs(100, 1, 0.0, 1.0), batch_size=64)
    checked = Counter()
    for messages in games["messages"].to_list():
        for prompt, answer in zip(messages[1::2], messages[2::2]):
            board = board_from_text(prompt["content"])
            cell = int(re.search(r"<move>(\d)</move>", answer["content"]).group(1))
            think = answer["content"]
            facts = re.match(r"<think>Wins: ([\d, ]+|none)\. Threats: ([\d, ]+|none)\. ", think)  # before the move, every time
            assert facts and facts.groups() == tuple(", ".join(map(str, rules.winning_cells(board, side))) or "none" for side in "XO")
            checked["win+block"] += bool(rules.winning_cells(board, "X") and rules.winning_cells(board, "O"))
            if "wins" in think:
                assert cell in rules.winning_cells(board, "X")
                checked["win"] += 1
            elif "block" in think:
                assert cell in rules.winning_cells(board, "O")
                checked["block"] += 1
            elif "two ways" in think:
                assert rules.creates_fork(board, cell, "X")
                checked["fork"] += 1
    assert checked["win"] and checked["block"] and checked["fork"] and checked["win+block"]


class _Counting(ScriptedTeacher):
    """The scripted teacher, counting the answers it is asked for (what an API would bill)."""

    asked = 0

    def respond(self, conversations, seeds):
        type(self).asked += len(conversations)
        return super().respond(conversations, seeds)


def test_journal_outlives_a_failed_save_and_the_rerun_asks_nothing_again(tmp_path):
    specs = game_specs(20, seed=3, p_min=0.0, p_max=1.0)

    def play(save, forfeit_invalid=False):
        return play_games(builtin("tictactoe", max_turns=8), _Counting(0.8), specs, 8, forfeit_invalid=forfeit_invalid, journal_dir=tmp_path, save=save)

    def broken_disk(games):
        raise OSError("disk full")

    before = _Counting.asked  # a class-wide count: measure from here, whatever ran before
    with pytest.raises(OSError):
        play(broken_disk)
    once = _Counting.asked - before
    with pytest.raises(OSError):
        play(broken_disk, forfeit_invalid=True)  # other rules: its own journal, nothing resumed
    assert _Counting.asked - before == 2 * once and len(list(tmp_path.glob("*.jsonl"))) == 2
    saved = []
    games = play(saved.append)
    assert _Counting.asked - before == 2 * once and games.height == 20 and saved[0].equals(games)
    assert len(list(tmp_path.glob("*.jsonl"))) == 1  # stored, so its journal is spent; the other run's stays
