"""Tic-tac-toe: the student plays X against an opponent that plays randomly with probability p, else perfectly.

The reference task. Its suites are the random (p = 1) and the optimal (p = 0) opponent; it brings a
scripted teacher with a blind spot, exact evaluation with minimax move judgements, the expectimax
ceiling and the published numbers for the report.
"""

from __future__ import annotations

from pydantic import Field

from sftboot.core.config import Section
from sftboot.engine.environment import Environment, GameSpec, RewardPart
from sftboot.envs.tictactoe import board as rules
from sftboot.envs.tictactoe.game import TicTacToeEnv
from sftboot.envs.tictactoe.teacher import reading_share


class TicTacToeParams(Section):
    max_turns: int = Field(ge=5, le=20, description="assistant turns before a game ends as a loss")


class TicTacToe(Environment):
    name = "tictactoe"
    section = TicTacToeParams
    suites = {"random": 1.0, "optimal": 0.0}
    suite_titles = {"random": "a random opponent (p = 1)", "optimal": "the optimal opponent (p = 0)"}
    headline = (("optimal", "draw"), ("random", "win"), ("random", "loss"))
    person_side = "O"
    token_units = r"\b[XO]?[0-9]\b|[0-9]|\b[XO]\b"  # a cell, a mark, or a cell marked in the board's drawing

    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> TicTacToeEnv:
        return TicTacToeEnv(spec, max_turns=self.max_turns, forfeit_invalid=forfeit_invalid)

    def reward_parts(self) -> dict[str, RewardPart]:
        reading = RewardPart("share of answers whose `Wins:` / `Threats:` are true of the board they answered", lambda game: reading_share(game["messages"]))
        return super().reward_parts() | {"reading": reading}

    def scripted_teacher(self, skill: float, lookahead: float):
        from sftboot.envs.tictactoe.teacher import ScriptedTeacher

        return ScriptedTeacher(skill, lookahead)

    def exact_evaluation(self, policy, suite: str, batch_size: int):
        from sftboot.envs.tictactoe.exact import play_every_line

        return play_every_line(policy, suite, self.suites[suite], self.max_turns, batch_size)

    def sound_answers(self, game: dict) -> list[bool] | None:
        from sftboot.envs.tictactoe.exact import keeps_value

        if game["invalid_moves"]:  # a retried answer played no move: answers and X's moves no longer pair up
            return None
        board, verdicts = rules.EMPTY_BOARD, []
        for cell, mark in rules.marks_played(game["moves"], game["opponent_started"]):
            if mark == "X":
                verdicts.append(keeps_value(board, cell))
            board = rules.place(board, cell, mark)
        return verdicts

    def reference(self, suite: str) -> dict:
        from sftboot.envs.tictactoe.exact import ceiling
        from sftboot.envs.tictactoe.report import NOTES, PUBLISHED

        return {"published": PUBLISHED[suite], "best": ceiling(self.suites[suite]), "best_how": "expectimax", "notes": NOTES}

    def play_in_terminal(self, policy, seed: int, show_thinking: bool) -> None:
        from sftboot.envs.tictactoe.terminal import play_against_person

        play_against_person(policy, seed, self.max_turns, show_thinking)

    def episode_against(self, person, person_first: bool) -> TicTacToeEnv:
        from sftboot.envs.tictactoe.web import episode_against

        return episode_against(person, person_first, self.max_turns)

    def picture(self, moves: list[int], opponent_started: bool, messages: list[dict], playable: bool) -> str:
        from sftboot.envs.tictactoe.web import picture

        return picture(moves, opponent_started, playable)

    def report_extras(self, played: dict, path) -> list[str]:
        from sftboot.envs.tictactoe.report import lines_section, plot_lines

        plot_lines(played, path)
        return lines_section(played)
