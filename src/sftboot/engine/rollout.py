"""The rollout engine: plays many games at once with one policy and records one row per game.

Each turn, every live game's conversation goes to the policy in one batch (one API fan-out, or
one forward pass for a local model). A finished game is appended to a journal at once, so an
interrupted run (Ctrl-C, kill, an API outage past its retries) resumes and re-asks nothing it has.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl
from tqdm import tqdm

from sftboot.engine.environment import Environment, Episode, GameSpec
from sftboot.engine.policy import API_COUNTS, Policy, Reply

GAME_SCHEMA = {
    "game_id": pl.Int64,
    "seed": pl.Int64,
    "p": pl.Float64,
    "opponent_started": pl.Boolean,
    "policy_id": pl.String,
    "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
    "moves": pl.List(pl.Int64),
    "outcome": pl.String,
    "capped": pl.Boolean,
    "turns": pl.Int64,
    "well_formed_turns": pl.Int64,
    "invalid_moves": pl.Int64,
    "reward_outcome": pl.Float64,
    "reward_format": pl.Float64,
    "reward_invalid": pl.Float64,
    "reward_total": pl.Float64,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "answers_at_cap": pl.Int64,
    "cost_usd": pl.Float64,
    "api": pl.Struct({name: pl.Int64 for name in API_COUNTS}),
}
# What a policy that records token streams (the student during RL) adds to each row.
TRACE_SCHEMA = {
    "prompt_ids": pl.List(pl.Int64),
    "completion_ids": pl.List(pl.Int64),
    "env_mask": pl.List(pl.Int64),
    "sampling_logprobs": pl.List(pl.Float64),
}


class LiveGame:
    """A game being played and what its answers cost so far."""

    def __init__(self, env: Episode) -> None:
        self.env = env
        self.prompt_tokens = self.completion_tokens = self.answers_at_cap = 0
        self.cost_usd = 0.0
        self.api: Counter = Counter()

    def take(self, reply: Reply) -> None:
        self.env.step(reply.text)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.answers_at_cap += reply.at_cap
        self.cost_usd += reply.cost_usd
        self.api.update(reply.api)

    def row(self, policy_id: str) -> dict:
        env, rewards = self.env, self.env.rewards()
        return {
            "game_id": env.spec.game_id,
            "seed": env.spec.seed,
            "p": env.spec.p,
            "opponent_started": env.opponent_started,
            "policy_id": policy_id,
            "messages": env.messages,
            "moves": env.moves,
            "outcome": env.outcome,
            "capped": env.capped,
            "turns": env.turns,
            "well_formed_turns": sum(env.well_formed),
            "invalid_moves": env.invalid_moves,
            "reward_outcome": rewards.outcome,
            "reward_format": rewards.format,
            "reward_invalid": rewards.invalid,
            "reward_total": rewards.total,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "answers_at_cap": self.answers_at_cap,
            "cost_usd": self.cost_usd,
            "api": {name: self.api[name] for name in API_COUNTS},
        }


def _journal_path(journal_dir: Path, policy_id: str, specs: list[GameSpec], environment: Environment, forfeit_invalid: bool) -> Path:
    """A journal per (policy, games, rules): a changed param never resumes from another run's games."""
    fingerprint = json.dumps([policy_id, environment.describe(), forfeit_invalid, [(s.game_id, s.seed, s.p, *s.opening) for s in specs]])
    return journal_dir / f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.jsonl"


def _read_journal(path: Path) -> dict[int, dict]:
    finished = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line a kill cut short; that game is played again
            finished[row["game_id"]] = row
    return finished


def play_games(
    environment: Environment,
    policy: Policy,
    specs: list[GameSpec],
    batch_size: int,
    description: str = "games",
    forfeit_invalid: bool = False,
    journal_dir: Path | None = None,
    save: Callable[[pl.DataFrame], None] | None = None,
    clock: Counter | None = None,
) -> pl.DataFrame:
    """Play every game in `specs` to the end; rows come back sorted by game id.

    With `journal_dir`, each finished game is journaled there (one file per policy, games and
    rules) and a rerun resumes from it; the journal is deleted only once `save` has stored the games.
    Wall-clock figures stay out of the rows, so the same games are the same bytes: `clock` sums
    `answers` and `answer_seconds` (each reply's own latency, else its batch's wall time).
    """
    journal = _journal_path(journal_dir, policy.policy_id, specs, environment, forfeit_invalid) if journal_dir else None
    finished = _read_journal(journal) if journal else {}
    pending = [spec for spec in specs if spec.game_id not in finished]
    live: list[LiveGame] = []
    sink = None
    if journal:
        journal.parent.mkdir(parents=True, exist_ok=True)
        sink = journal.open("a")
    bar = tqdm(total=len(specs), initial=len(finished), desc=description, unit="game", disable=None)
    try:
        while pending or live:
            if not live:  # whole waves: a batched decoder keeps one KV cache per wave of games
                live = [LiveGame(environment.start(spec, forfeit_invalid)) for spec in pending[:batch_size]]
                pending = pending[batch_size:]
            started = time.perf_counter()
            replies = policy.respond([game.env.messages for game in live], [game.env.spec.seed for game in live])
            if clock is not None:
                batch_seconds = time.perf_counter() - started
                clock["answers"] += len(replies)
                clock["answer_seconds"] += sum(reply.latency_s or batch_seconds for reply in replies)
            still_live = []
            for game, reply in zip(live, replies, strict=True):
                game.take(reply)
                if not game.env.done:
                    still_live.append(game)
                    continue
                row = game.row(policy.policy_id)
                if hasattr(policy, "finish"):  # policies that keep per-game state release it here
                    row |= policy.finish(game.env.messages)
                finished[row["game_id"]] = row
                if sink:
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())
                bar.update(1)
            live = still_live
    finally:
        bar.close()
        if sink:
            sink.close()
    rows = [finished[spec.game_id] for spec in specs]
    schema = GAME_SCHEMA | (TRACE_SCHEMA if rows and "completion_ids" in rows[0] else {})
    games = pl.DataFrame(rows, schema=schema)
    if save:
        save(games)
    if journal:
        journal.unlink(missing_ok=True)
    return games
