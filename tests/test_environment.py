"""The environment against the published facts, the rules, and its own replay."""

from collections import Counter

import pytest

from sftboot.core.answer import extract_move, is_well_formed
from sftboot.engine.environment import FORMAT_FEEDBACK, GameSpec, game_specs
from sftboot.envs import builtin
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv, opponent_move

INVALID_MOVE = TicTacToeEnv.INVALID_MOVE


def _explore(first: str):
    """Every position reachable from the empty board with `first` to move, and complete-game count."""
    positions, terminal = set(), set()
    x_to_move = set()

    def walk(board: str, to_move: str) -> int:
        positions.add(board)
        if rules.is_terminal(board):
            terminal.add(board)
            return 1
        if to_move == "X":
            x_to_move.add(board)
        return sum(walk(rules.place(board, cell, to_move), rules.other(to_move)) for cell in rules.free_cells(board))

    games = walk(rules.EMPTY_BOARD, first)
    return positions, terminal, x_to_move, games


def test_game_tree_matches_published_counts():
    x_positions, x_terminal, x_turns, x_games = _explore("X")
    o_positions, o_terminal, o_turns, o_games = _explore("O")
    assert (len(x_positions), len(x_terminal), x_games) == (5478, 958, 255168)
    assert (len(o_positions), len(o_terminal), o_games) == (5478, 958, 255168)
    assert len(x_positions | o_positions) == 8533
    assert len(x_terminal | o_terminal) == 1916
    assert (len(x_turns), len(o_turns)) == (2423, 2097)


def test_perfect_play_from_empty_board_is_a_draw():
    assert max(rules.move_values(rules.EMPTY_BOARD, "X").values()) == 0


def test_optimal_against_optimal_always_draws_along_every_tie_choice():
    def outcomes(board: str, to_move: str) -> set:
        if rules.is_terminal(board):
            return {rules.winner(board)}
        found = set()
        for cell in rules.optimal_moves(board, to_move):
            found |= outcomes(rules.place(board, cell, to_move), rules.other(to_move))
        return found

    assert outcomes(rules.EMPTY_BOARD, "X") == {None}
    assert outcomes(rules.EMPTY_BOARD, "O") == {None}


def test_minimax_prefers_faster_wins():
    board = "OO XX    "  # O wins now at 2; X's threat at 5 must not distract it
    assert rules.optimal_moves(board, "O") == [2]


def test_opponent_breaks_ties_uniformly_over_all_optimal_moves():
    board = "    X    "  # after X takes the centre, O's optimal replies are the four corners
    assert sorted(rules.optimal_moves(board, "O")) == [0, 2, 6, 8]
    picks = Counter(opponent_move(board, seed, p=0.0) for seed in range(2000))
    assert set(picks) == {0, 2, 6, 8}
    assert min(picks.values()) > 400


def test_opponent_at_p1_plays_any_free_cell_and_p0_only_optimal():
    board = "X        "
    assert set(opponent_move(board, seed, p=1.0) for seed in range(500)) == set(range(1, 9))
    assert set(opponent_move(board, seed, p=0.0) for seed in range(500)) == {4}


@pytest.mark.parametrize(
    "text, move, cell, well_formed",
    [
        ("<think>centre</think><move>4</move>", "4", 4, True),
        ("<think>a</think>\n<move> 7 </move>", "7", 7, True),
        ("<move>3</move>", "3", 3, False),
        ("<move>4</move><think>late</think>", "4", 4, False),
        ("<think>x</think><move>1</move> then <move>2</move>", "2", 2, True),
        ("<think>x</think><move>10</move>", "10", None, True),
        ("<think>x</think><move>9</move>", "9", None, True),
        ("<think>x</think><move>centre</move>", "centre", None, True),
        ("<think>x</think><move>-1</move>", "-1", None, True),
        ("I play 4", None, None, False),
        ("<think>x</think><move>4", None, None, False),
        ("", None, None, False),
    ],
)
def test_answer_parsing(text, move, cell, well_formed):
    assert extract_move(text) == move
    assert (TicTacToeEnv(GameSpec(0, 0, 1.0)).parse(move) if move is not None else None) == cell
    assert is_well_formed(text) == well_formed


def _first_free(env: TicTacToeEnv) -> str:
    return f"<think>t</think><move>{rules.free_cells(env.board)[0]}</move>"


def test_invalid_and_malformed_moves_get_feedback_and_a_retry():
    env = TicTacToeEnv(GameSpec(0, seed=1, p=1.0))
    board = env.board
    env.step("no tags at all")
    assert env.messages[-1]["content"].startswith(FORMAT_FEEDBACK)
    taken = next((i for i, c in enumerate(board) if c == "O"), None)
    env.step(f"<think>t</think><move>{taken if taken is not None else 9}</move>")
    assert env.messages[-1]["content"].startswith(INVALID_MOVE)
    assert env.board == board and env.invalid_moves == 2 and not env.done
    rewards = env.rewards()
    assert rewards.invalid == -0.1 and rewards.format == 0.5


def test_forfeit_ends_the_game_at_the_first_invalid_answer():
    """RL's forfeit rule: the game stops where the mistake is, so no later turn shares its blame."""
    for answer in ("no tags at all", "<think>t</think><move>9</move>"):
        env = TicTacToeEnv(GameSpec(0, seed=1, p=1.0), forfeit_invalid=True)
        board = env.board
        env.step(answer)
        assert env.done and env.outcome == "loss" and not env.capped and env.board == board
        assert env.messages[-1]["content"].split("\n")[0].endswith("You lose!") and env.invalid_moves == 1
        assert env.rewards().outcome == 0.0 and env.rewards().invalid == -0.1
    env = TicTacToeEnv(GameSpec(0, seed=1, p=1.0), forfeit_invalid=True)
    env.step(_first_free(env))
    assert not env.done and env.invalid_moves == 0


def test_turn_cap_ends_the_game_as_a_loss():
    env = TicTacToeEnv(GameSpec(0, seed=5, p=1.0), max_turns=5)
    for _ in range(5):
        env.step("garbage")
    assert env.done and env.outcome == "loss" and env.capped
    assert env.rewards().total == pytest.approx(-0.1)
    assert env.messages[-1]["content"].startswith(FORMAT_FEEDBACK + " Turn limit reached. You lose!")


def test_messages_follow_the_reference_shape():
    env = TicTacToeEnv(GameSpec(0, seed=3, p=0.5))
    system, first = env.messages
    assert system["role"] == "system" and "<move>" in system["content"] and "<think>" in system["content"]
    assert first["content"].endswith("Your turn.")
    assert "Available positions: [" in first["content"]
    status = first["content"].splitlines()[0]
    assert status == "Game started. You are X." or status.startswith("Opponent (O) played at position")


def test_rewards_combine_outcome_format_and_penalty():
    env = TicTacToeEnv(GameSpec(0, seed=11, p=1.0))
    while not env.done:
        env.step(_first_free(env))
    rewards = env.rewards()
    assert rewards.format == 1.0 and rewards.invalid == 0.0
    assert rewards.total == pytest.approx({"win": 1.0, "draw": 0.5, "loss": 0.0}[env.outcome] + 0.2)


def test_games_replay_bit_for_bit():
    for spec in game_specs(30, seed=7, p_min=0.0, p_max=1.0, num_groups=3):
        env = TicTacToeEnv(spec)
        while not env.done:
            env.step(_first_free(env))
        answers = [m["content"] for m in env.messages if m["role"] == "assistant"]
        again = builtin("tictactoe").replay(spec, answers)
        assert again.messages == env.messages and again.outcome == env.outcome


def test_game_specs_are_seeded_and_stratified():
    specs = game_specs(40, seed=0, p_min=0.2, p_max=0.6, num_groups=4)
    assert specs == game_specs(40, seed=0, p_min=0.2, p_max=0.6, num_groups=4)
    assert specs != game_specs(40, seed=1, p_min=0.2, p_max=0.6, num_groups=4)
    for spec in specs:
        bucket = spec.game_id % 4
        assert 0.2 + 0.1 * bucket <= spec.p <= 0.2 + 0.1 * (bucket + 1)
    assert len({spec.seed for spec in specs}) == 40
    starts = Counter(TicTacToeEnv(spec).opponent_started for spec in game_specs(400, 0, 0.0, 1.0))
    assert 150 < starts[True] < 250
