"""What a policy is: it answers a batch of conversations at once, and says what each answer cost.

Every player implements it: an environment's scripted teacher, an OpenAI-compatible endpoint, the
student as a local transformers checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Reply:
    """One assistant message and what it cost to produce."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    at_cap: bool = False  # the answer ran into its token budget before it ended: cut, not finished
    api: dict[str, int] = field(default_factory=dict)  # an API teacher's retries, faults and reasoning tokens


# What an API policy counts per game: transport retries (429, 5xx, no response: timeout or dropped
# connection), 200s that were not completions (retried too), what the model returned empty, and
# the reasoning tokens within its completion tokens.
API_COUNTS = ("rate_limited", "server_errors", "no_response", "not_json", "no_choices", "null_content", "empty_content", "reasoning_tokens")


class Policy(Protocol):
    policy_id: str

    def respond(self, conversations: list[list[dict]], seeds: list[int]) -> list[Reply]:
        """One reply per conversation, in order; `seeds` are the games' seeds, so a stochastic
        policy draws its choices per game and a replayed game is the same game."""
        ...
