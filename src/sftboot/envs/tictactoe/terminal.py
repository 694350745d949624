"""`sftboot play` for tic-tac-toe: the person at the terminal plays O against the model."""

from __future__ import annotations

from sftboot.core.answer import extract_move
from sftboot.engine.environment import GameSpec
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv


def _ask_human(board: str, seed: int, p: float) -> int:
    print(rules.render(board))
    free = rules.free_cells(board)
    while True:
        typed = input(f"your move (O), one of {free}: ").strip()
        if typed.isdigit() and int(typed) in free:
            return int(typed)
        print("pick a free cell number")


def play_against_person(policy, seed: int, max_turns: int, show_thinking: bool) -> None:
    """The seed decides who starts and the model's draws; --show-thinking prints the model's whole answer."""
    env = TicTacToeEnv(GameSpec(0, seed=seed, p=0.0), max_turns=max_turns, opponent=_ask_human)
    while not env.done:
        answer = policy.respond([env.messages], [seed])[0].text
        if show_thinking:
            print(f"model: {answer}")
        print(f"model plays X at {extract_move(answer)}")
        invalid_before = env.invalid_moves
        env.step(answer)
        if env.invalid_moves > invalid_before:
            print("(not a legal move; the model tries again)")
    print(rules.render(env.board))
    print({"win": "The model wins.", "loss": "You win!" if not env.capped else "The model ran out of turns.", "draw": "A draw."}[env.outcome])
