"""Where the SFT student loses reward, as positions RL games can start from.

A greedy student's costly answers sit in rare positions: each is reached in a percent or two of
games, so RL games played from the opening visit it a few dozen times a run and the outcome reward
there is drowned in the rest. The student's exact evaluation says where the reward goes: every
answer with its reach and what it gives up (an environment that judges moves), or every line with
its probability and outcome (one whose chance lies in the spec). A weak spot is such a position
with the conversation that leads to it; RL starts GRPO groups there, so the group's games differ
at the answer that matters.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from transformers import TrainerCallback

from sftboot.engine.environment import Environment, Episode, GameSpec

if TYPE_CHECKING:
    from sftboot.core.config import WeakSpotParams

INVALID_COST = 0.5  # an invalid answer's reward lost: the retry costs a turn, often the game (a draw's worth)
SEARCH_TRIES = 20_000  # seeds tried to find one whose chance replays a recorded conversation
TOLERANCE = 1e-9


@dataclass(frozen=True)
class WeakSpot:
    """A position where the SFT student lost reward: its game, what it lost and what would lose nothing."""

    spec: GameSpec  # seed and p that replay the earlier turns exactly; `opening` holds the earlier answers
    messages: list[dict]  # the conversation the student answered in: the GRPO group's prompt
    moves: tuple[int, ...]  # the moves played before it, to recognise a sampled game passing through
    opponent_started: bool
    weight: float  # expected reward lost here: reach x regret
    best: tuple[int, ...]  # moves that lose nothing; empty where the environment does not judge moves

    @property
    def key(self) -> str:
        return prompt_key(self.messages)


def prompt_key(messages: list[dict]) -> str:
    return json.dumps([(message["role"], message["content"]) for message in messages])


def weak_spots(environment: Environment, lines: pl.DataFrame, moves: pl.DataFrame, limit: int, seed: int) -> list[WeakSpot]:
    """The `limit` positions where the evaluated student loses most reward, costliest first.

    From judged answers (reach x regret; an invalid answer costs INVALID_COST) where the evaluation
    has them, else from the lines it did not win (probability x reward short of a win), restarted
    at their opening.
    """
    rng = random.Random(f"weak:{seed}")
    if moves.height:
        return _judged_spots(environment, moves, limit, rng)
    return _lost_lines(environment, lines, limit)


def _judged_spots(environment: Environment, moves: pl.DataFrame, limit: int, rng: random.Random) -> list[WeakSpot]:
    costly = (
        moves.with_columns(weight=pl.col("reach") * pl.when(pl.col("cell").is_null()).then(INVALID_COST).otherwise(pl.col("regret")))
        .filter(pl.col("weight") > TOLERANCE)
        .sort("weight", descending=True, maintain_order=True)
    )
    spots: dict[str, WeakSpot] = {}
    for row in costly.iter_rows(named=True):
        key = prompt_key(row["history"])
        if key in spots:  # the same conversation in another suite: one spot, the costlier suite's opponent
            continue
        found = _reproduce(environment, row["history"], environment.suites[row["opponent"]], rng)
        if found is None:
            continue
        spec, episode = found
        spots[key] = WeakSpot(spec, row["history"], tuple(episode.moves), episode.opponent_started, row["weight"], tuple(row["best_cells"] or ()))
        if len(spots) == limit:
            break
    return list(spots.values())


def _lost_lines(environment: Environment, lines: pl.DataFrame, limit: int) -> list[WeakSpot]:
    lost = lines.with_columns(weight=pl.col("probability") * (1.0 - pl.col("reward_outcome"))).filter(pl.col("weight") > TOLERANCE)
    spots = []
    for row in lost.sort("weight", descending=True, maintain_order=True).head(limit).iter_rows(named=True):
        spec = GameSpec(0, row["seed"], row["p"])
        episode = environment.episode(spec)
        spots.append(WeakSpot(spec, episode.messages, (), episode.opponent_started, row["weight"], ()))
    return spots


def _reproduce(environment: Environment, history: list[dict], p: float, rng: random.Random) -> tuple[GameSpec, Episode] | None:
    """A spec of difficulty p whose chance (who starts, the opponent's replies) replays `history`; None if none turns up."""
    answers = tuple(message["content"] for message in history if message["role"] == "assistant")
    for _ in range(SEARCH_TRIES):
        spec = GameSpec(0, rng.randrange(2**31), p, opening=answers)
        try:
            episode = environment.start(spec)
        except ValueError:  # this seed's game ended before every answer was played
            continue
        if episode.messages == history:
            return spec, episode
    return None


class WeakSpots:
    """The spots RL games start from: drawn per GRPO group, and found again on the model being trained
    every `refresh_every` steps, since a fixed spot stops mattering once fixed and a changed move leads
    to positions the first evaluation never reached."""

    def __init__(self, spots: list[WeakSpot], params: WeakSpotParams, environment: Environment) -> None:
        self.spots, self.params, self.environment = spots, params, environment
        self.refreshes = 0

    def draw(self, seed: int, step: int, group: int) -> WeakSpot | None:
        """The spot group `group` of `step` starts from, in proportion to the reward lost there; None: `share` says an opening."""
        rng = random.Random(f"spot:{seed}:{step}:{group}")
        if not self.spots or rng.random() >= self.params.share:
            return None
        return rng.choices(self.spots, weights=[spot.weight for spot in self.spots])[0]

    def refresh(self, model, tokenizer, max_tokens: int, seed: int) -> None:
        """Evaluate the greedy model exactly in every suite that allows it; its weak spots replace the current ones."""
        from sftboot.engine.exact import LINE_SCHEMA, MOVE_SCHEMA
        from sftboot.engine.generation import StudentPolicy

        policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=max_tokens, policy_id="student:rl")
        lines, moves = [pl.DataFrame(schema=LINE_SCHEMA)], [pl.DataFrame(schema=MOVE_SCHEMA)]
        for suite in self.environment.suites:
            enumerated = self.environment.exact_evaluation(policy, suite, batch_size=512)
            if enumerated is not None:
                lines.append(enumerated[0])
                moves.append(enumerated[1])
        self.refreshes += 1
        self.spots = weak_spots(self.environment, pl.concat(lines), pl.concat(moves), self.params.limit, seed + self.refreshes)

    def refresher(self, tokenizer, max_tokens: int, seed: int) -> TrainerCallback:
        spots = self

        class Refresh(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if spots.spots and state.global_step % spots.params.refresh_every == 0 and state.global_step < state.max_steps:
                    was_training = model.training
                    model.eval()
                    spots.refresh(model, tokenizer, max_tokens, seed)
                    model.train(was_training)

        return Refresh()


def passes_through(game_moves: list[int], opponent_started: bool, spot: WeakSpot) -> bool:
    """Whether a game went through the spot's position: the same side opened, the same moves in the same order, and more after."""
    moves = tuple(game_moves[: len(spot.moves)])
    return opponent_started == spot.opponent_started and len(game_moves) > len(spot.moves) and moves == spot.moves
