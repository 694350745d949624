"""The evaluation harness: any policy against the random (p = 1) and the optimal (p = 0) opponent."""

from __future__ import annotations

from sftboot.env import game_specs
from sftboot.metrics import summarize
from sftboot.policies import Policy
from sftboot.rollout import play_games

OPPONENTS = {"random": 1.0, "optimal": 0.0}


def evaluate(policy: Policy, opponents: list[str], games: int, seed: int, max_turns: int, batch_size: int) -> dict:
    """Metrics per opponent; the same seeds for every model, so models meet the same games."""
    results = {}
    for opponent in opponents:
        p = OPPONENTS[opponent]
        specs = game_specs(games, seed, p, p)
        played = play_games(policy, specs, max_turns, batch_size, description=f"{policy.policy_id} vs {opponent}")
        results[opponent] = summarize(played)
    return results


def load_student_policy(path: str, max_tokens_per_turn: int):
    """A local checkpoint as a greedy evaluation policy."""
    from sftboot.generation import StudentPolicy
    from sftboot.student import load_student

    model, tokenizer = load_student(path)
    model.eval()
    return StudentPolicy(model, tokenizer, max_tokens_per_turn=max_tokens_per_turn, policy_id=f"student:{path}")
