"""The evaluation harness: any policy in each of the environment's suites.

A deterministic policy (a greedy student) is evaluated exactly, over every line the episode can take,
where the environment can enumerate them; any other (a sampling student, the scripted teacher, an API
model) over sampled games, with Wilson intervals. Either way the games come back, one row per line or
game with its probability.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from sftboot.core.io import write_parquet
from sftboot.engine.environment import Environment, game_specs
from sftboot.engine.exact import LINE_SCHEMA, MOVE_SCHEMA, summarize_lines
from sftboot.engine.metrics import summarize
from sftboot.engine.policy import Policy
from sftboot.engine.rollout import GAME_SCHEMA, play_games

if TYPE_CHECKING:  # the device module imports torch, which the CLI need not pay for at start-up
    from sftboot.core.device import Placement


@dataclass
class Evaluation:
    metrics: dict  # per opponent: rates, each marked exact or sampled
    games: pl.DataFrame  # LINE_SCHEMA: every line with its probability, or every sampled game with 1 / games
    moves: pl.DataFrame  # MOVE_SCHEMA: every answer of an exact evaluation with its reach; empty when sampled

    def save(self, folder: Path) -> None:
        """games.parquet and moves.parquet, readable with polars, for the report and for people."""
        write_parquet(folder / "games.parquet", self.games)
        write_parquet(folder / "moves.parquet", self.moves)


def is_deterministic(policy: Policy) -> bool:
    return bool(getattr(policy, "deterministic", False))


def evaluate(environment: Environment, policy: Policy, suites: list[str], games: int, seed: int, batch_size: int, exact: bool = True) -> Evaluation:
    """Metrics per suite; sampled games use the same seeds for every model, so models meet the same games.

    `exact` evaluates a deterministic policy over every line where the environment can; `games` and `seed` then go unused.
    """
    metrics, game_frames, move_frames = {}, [], []
    for opponent in suites:
        p = environment.suites[opponent]
        enumerated = environment.exact_evaluation(policy, opponent, batch_size) if exact and is_deterministic(policy) else None
        if enumerated is not None:
            lines, moves = enumerated
            metrics[opponent] = summarize_lines(lines, moves)
            game_frames.append(lines)
            move_frames.append(moves)
            continue
        specs = [replace(spec, suite=opponent) for spec in game_specs(games, seed, p, p)]
        played = play_games(environment, policy, specs, batch_size, description=f"{policy.policy_id} vs {opponent}")
        metrics[opponent] = {"kind": "sampled"} | summarize(played)
        weighted = played.select(list(GAME_SCHEMA)).with_columns(opponent=pl.lit(opponent), probability=pl.lit(1 / played.height))
        game_frames.append(weighted.select(list(LINE_SCHEMA)))
    moves = pl.concat(move_frames) if move_frames else pl.DataFrame(schema=MOVE_SCHEMA)
    return Evaluation(metrics, pl.concat(game_frames), moves)


def load_student_policy(path: str, max_tokens_per_turn: int, place: Placement | None = None):
    """A local checkpoint as a greedy evaluation policy, on the run's device and in its dtype (the CPU's when none is given)."""
    from sftboot.core.device import CPU
    from sftboot.engine.generation import StudentPolicy
    from sftboot.training.student import load_student

    place = place or CPU
    model, tokenizer = load_student(path, place.dtype)
    model.to(place.device).eval()
    return StudentPolicy(model, tokenizer, max_tokens_per_turn=max_tokens_per_turn, policy_id=f"student:{path}")


def describe(result: dict) -> str:
    """One line for a person: how the figures were obtained, then the rates (a sampled one with its interval)."""

    def rate(name: str) -> str:
        figure = result[name]
        interval = f" [{figure['ci95_low']}, {figure['ci95_high']}]" if "ci95_low" in figure else ""
        return f"{name.replace('_', ' ')} {figure['pct']}%{interval}"

    names = ["win", "draw", "loss", "format", "invalid_games"] + (["move_quality"] if "move_quality" in result else [])
    kind = f"exact over {result['lines']} lines" if result["kind"] == "exact" else f"sampled, {result['games']} games"
    return f"{kind}: " + ", ".join(rate(name) for name in names) + f", mean reward {result['mean_reward']}"
