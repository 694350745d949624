"""Mastermind: crack a secret code of `pegs` colours (1 to `colours`) from black and white peg feedback.

A different kind of task from a board game: no opponent, the whole state is the history of guesses,
and skill is reasoning over that history (which codes still fit). The difficulty p is the chance
that the secret repeats a colour: the suites are `distinct` (p = 0) and `repeated` (p = 1), so the
report shows whether a player handles both kinds of code. The secret follows from the seed alone,
so a greedy student is evaluated exactly by playing every secret of a suite once.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from functools import cache

from pydantic import Field

from sftboot.core.answer import format_answer
from sftboot.core.config import Section
from sftboot.core.errors import UserError
from sftboot.engine.environment import Environment, Episode, GameSpec
from sftboot.engine.exact import play_each_spec
from sftboot.engine.policy import Reply

SYSTEM_PROMPT = (
    "You play Mastermind. The secret code has {pegs} positions, each a colour from 1 to {colours}; "
    "colours may repeat. Each turn, guess a code: think briefly inside <think>...</think>, then give "
    "the guess inside <move>...</move>, for example <move>{example}</move>. Feedback: black = right "
    "colour in the right position, white = right colour in the wrong position."
)
STARTED = "Game started. Guess the code."
FEEDBACK = "{guess} -> {black} black {white} white"
_FEEDBACK = re.compile(r"^([1-9]+) -> (\d) black (\d) white$", re.MULTILINE)

Code = tuple[int, ...]


class MastermindParams(Section):
    max_turns: int = Field(ge=1, le=20, description="guesses before the game ends as a loss")
    pegs: int = Field(ge=2, le=6, description="positions in the secret code")
    colours: int = Field(ge=2, le=9, description="colours a position can take, numbered 1 to colours")


def pegs_for(guess: Code, secret: Code) -> tuple[int, int]:
    """(black, white): right colour in the right place, and right colour elsewhere."""
    black = sum(g == s for g, s in zip(guess, secret))
    common = sum(min(guess.count(colour), secret.count(colour)) for colour in set(guess))
    return black, common - black


@cache
def all_codes(pegs: int, colours: int) -> tuple[Code, ...]:
    return tuple(itertools.product(range(1, colours + 1), repeat=pegs))


def codes_of_kind(pegs: int, colours: int, repeated: bool) -> tuple[Code, ...]:
    """The secrets of one suite: with a repeated colour, or all colours distinct."""
    return tuple(code for code in all_codes(pegs, colours) if (len(set(code)) < pegs) == repeated)


def secret_for(spec: GameSpec, pegs: int, colours: int) -> Code:
    """The secret of a game: its kind drawn with probability p, then the seed picks it (seed i of a suite is its i-th code)."""
    repeated = random.Random(f"{spec.seed}:kind").random() < spec.p
    pool = codes_of_kind(pegs, colours, repeated) or all_codes(pegs, colours)
    return pool[spec.seed % len(pool)]


def as_text(code: Code) -> str:
    """A code as the game writes it: its colours without spaces (each digit is its own token)."""
    return "".join(map(str, code))


def as_number(code: Code) -> int:
    """A guess as one integer (1 2 3 -> 123), for the games' `moves` column."""
    return int("".join(map(str, code)))


@dataclass
class MastermindEpisode(Episode):
    spec: GameSpec
    max_turns: int
    pegs: int
    colours: int
    secret: Code = ()
    guesses: list[tuple[Code, int, int]] = field(default_factory=list)

    INVALID_MOVE = "Invalid guess."

    def __post_init__(self) -> None:
        self.secret = secret_for(self.spec, self.pegs, self.colours)
        example = as_text(tuple(range(1, self.pegs + 1)))
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT.format(pegs=self.pegs, colours=self.colours, example=example)}]
        self._say(STARTED)

    def parse(self, move: str) -> int | None:
        """'123' (or '1 2 3') as the number 123; None when it is not `pegs` colours from 1 to `colours`."""
        digits = move.replace(" ", "")
        valid = len(digits) == self.pegs and all(c.isdigit() and 1 <= int(c) <= self.colours for c in digits)
        return int(digits) if valid else None

    def legal(self, action: int) -> bool:
        return True  # any code of the right shape may be guessed, even a repeated one

    def play(self, action: int) -> str:
        guess = tuple(int(c) for c in str(action))
        black, white = pegs_for(guess, self.secret)
        self.guesses.append((guess, black, white))
        self.moves.append(action)
        if black == self.pegs:
            self.outcome = "win"
        return f"Guess {len(self.guesses)}: {FEEDBACK.format(guess=as_text(guess), black=black, white=white)}."

    def random_answer(self, rng: random.Random) -> str:
        return f"<move>{as_text(tuple(rng.randint(1, self.colours) for _ in range(self.pegs)))}</move>"

    def _say(self, status: str) -> None:
        history = "\n".join(FEEDBACK.format(guess=as_text(g), black=b, white=w) for g, b, w in self.guesses) or "none yet"
        text = f"{status}\n\nGuesses:\n{history}"
        if self.outcome == "loss":
            text += f"\n\nThe code was {as_text(self.secret)}."
        elif not self.done:
            text += f"\n\nGuesses left: {self.max_turns - self.turns}\nYour turn."
        self.messages.append({"role": "user", "content": text})


def history_from_text(text: str) -> list[tuple[Code, int, int]]:
    """The guesses and their pegs in a message, as a reader of the conversation sees them."""
    return [(tuple(int(c) for c in guess), int(black), int(white)) for guess, black, white in _FEEDBACK.findall(text)]


def consistent(codes: tuple[Code, ...], history: list[tuple[Code, int, int]], whites: bool = True) -> list[Code]:
    """The codes that would have given every feedback so far; `whites=False` checks the black pegs only."""
    return [code for code in codes if all((pegs_for(g, code) if whites else (pegs_for(g, code)[0], w)) == (b, w) for g, b, w in history)]


def explain(code: Code, history: list[tuple[Code, int, int]]) -> str:
    """A short, true description of a guess against the feedback so far."""
    if consistent((code,), history):
        return "It fits all pegs."
    return "It fits the black pegs." if consistent((code,), history, whites=False) else "A fresh guess."


class MastermindTeacher:
    """A codebreaker with a habit, a search it does not always run, and slips, drawn per game like a sampled LLM's.

    The search guesses the first code (in counting order) that fits all feedback. The habit listens
    to the black pegs only, blind to what the white ones rule out, so it wastes guesses: a systematic
    weakness that SFT copies and RL can fix. A slip is a random code. Its `<think>` says what the
    guess really does: fit all the feedback, fit the black pegs only, or neither.
    """

    def __init__(self, pegs: int, colours: int, skill: float, lookahead: float) -> None:
        self.pegs, self.colours = pegs, colours
        self.skill, self.lookahead = skill, lookahead
        self.policy_id = f"mastermind-scripted:skill={skill},lookahead={lookahead}"

    @property
    def deterministic(self) -> bool:
        return self.skill >= 1 and self.lookahead in (0.0, 1.0)

    def choose(self, history: list[tuple[Code, int, int]], game_seed: int) -> Code:
        rng = random.Random(f"teacher:{game_seed}:{history}")
        codes = all_codes(self.pegs, self.colours)
        if rng.random() < self.skill:
            searched = self.lookahead >= 1 or rng.random() < self.lookahead
            guessed = {g for g, _, _ in history}
            options = [code for code in consistent(codes, history, whites=searched) if code not in guessed]
            return (options or list(codes))[0]
        return rng.choice(codes)

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        replies = []
        for messages, game_seed in zip(conversations, seeds, strict=True):
            history = history_from_text(messages[-1]["content"])
            code = self.choose(history, game_seed)
            replies.append(Reply(text=format_answer(explain(code, history), as_text(code))))
        return replies


class Mastermind(Environment):
    name = "mastermind"
    section = MastermindParams
    suites = {"distinct": 0.0, "repeated": 1.0}
    suite_titles = {"distinct": "secrets with distinct colours (p = 0)", "repeated": "secrets that repeat a colour (p = 1)"}
    headline = (("distinct", "win"), ("repeated", "win"))

    def __init__(self, params: MastermindParams) -> None:
        if params.colours < params.pegs:
            raise UserError(
                f"env.mastermind.colours ({params.colours}) must be at least env.mastermind.pegs ({params.pegs}), or no secret has distinct colours"
            )
        super().__init__(params)

    def episode(self, spec: GameSpec, forfeit_invalid: bool = False) -> MastermindEpisode:
        return MastermindEpisode(spec, self.max_turns, self.params.pegs, self.params.colours, forfeit_invalid=forfeit_invalid)

    def scripted_teacher(self, skill: float, lookahead: float) -> MastermindTeacher:
        return MastermindTeacher(self.params.pegs, self.params.colours, skill, lookahead)

    def exact_evaluation(self, policy, suite: str, batch_size: int):
        """Every secret of the suite once, each with the same probability: seed i plays the suite's i-th code."""
        count = len(codes_of_kind(self.params.pegs, self.params.colours, repeated=self.suites[suite] == 1.0))
        specs = [GameSpec(game_id=i, seed=i, p=self.suites[suite]) for i in range(count)]
        return play_each_spec(self, policy, suite, specs, batch_size)

    def picture(self, moves: list[int], opponent_started: bool, messages: list[dict], playable: bool) -> str:
        """Each guess as a row of coloured pegs, its black and white feedback pegs beside it."""
        shown = next((message["content"] for message in reversed(messages) if message["role"] == "user"), "")
        return pegs_picture(history_from_text(shown), self.params.pegs)


PEG_COLOURS = ("#e53935", "#1e88e5", "#43a047", "#fdd835", "#8e24aa", "#fb8c00", "#00acc1", "#6d4c41", "#ec407a")


def pegs_picture(history: list[tuple[Code, int, int]], pegs: int) -> str:
    """The guesses so far as SVG rows: a peg per colour, numbered, then the feedback's small black and white pegs."""
    size, width = 30, 30 * pegs + 24 + 12 * pegs
    rows = []
    for row, (guess, black, white) in enumerate(history):
        y = row * size + size / 2
        rows += [
            f'<circle cx="{i * size + size / 2}" cy="{y}" r="{size * 0.4}" fill="{PEG_COLOURS[colour - 1]}" stroke="#333"/>'
            f'<text x="{i * size + size / 2}" y="{y + 4}" font-size="11" text-anchor="middle" fill="#fff">{colour}</text>'
            for i, colour in enumerate(guess)
        ]
        feedback = ["#000"] * black + ["#fff"] * white
        rows += [f'<circle cx="{pegs * size + 18 + i * 12}" cy="{y}" r="4.5" fill="{fill}" stroke="#333"/>' for i, fill in enumerate(feedback)]
    height = max(len(history), 1) * size
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" data-guesses="{len(history)}">{"".join(rows)}</svg>'
