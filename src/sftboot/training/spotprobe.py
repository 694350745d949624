"""What RL does at the positions that matter: logged beside the rewards, every `rl.probe.every` steps.

At the costliest weak spots of the SFT student (judged moves only), the student samples answers
at the RL temperature; the share that plays a best move (and the share that plays no legal move)
says whether RL moves the policy where the losses are. The rollout's counts say how often games
meet those spots and how many groups there carry a reward difference. Together: exploration
(best moves never sampled), signal (sampled, but no group differs) or step size (signal, no change).
"""

from __future__ import annotations

from collections import Counter

from transformers import TrainerCallback

from sftboot.core.config import ProbeParams
from sftboot.engine.environment import Environment
from sftboot.engine.generation import StudentPolicy
from sftboot.training.weakspots import WeakSpot


def best_move_rates(
    model, tokenizer, environment: Environment, spots: list[WeakSpot], samples: int, temperature: float, max_tokens: int, seed: int
) -> list[tuple[float, float]]:
    """(share of best moves, share of invalid answers) among `samples` sampled answers at each spot."""
    policy = StudentPolicy(model, tokenizer, max_tokens_per_turn=max_tokens, temperature=temperature, seed=seed)
    conversations = [list(spot.messages) for spot in spots for _ in range(samples)]
    replies = policy.respond(conversations, [0] * len(conversations))
    rates = []
    for index, spot in enumerate(spots):
        best = invalid = 0
        for reply in replies[index * samples : (index + 1) * samples]:
            episode = environment.start(spot.spec)
            played, slips = len(episode.moves), episode.invalid_moves
            episode.step(reply.text)
            if episode.invalid_moves > slips:
                invalid += 1
            elif episode.moves[played] in spot.best:
                best += 1
        rates.append((best / samples, invalid / samples))
    return rates


class SpotProbe(TrainerCallback):
    """Adds probe/* (best-move and invalid shares, weighted by the reward each spot loses) and spots/*
    (the rollout's counts since the last log) to every logged step, for dvclive and the run's log
    history alike; the probe itself runs every `every` steps."""

    def __init__(
        self, environment: Environment, tokenizer, spots: list[WeakSpot], visits: Counter, params: ProbeParams, temperature: float, max_tokens: int, seed: int
    ) -> None:
        self.environment, self.tokenizer, self.visits = environment, tokenizer, visits
        self.spots = [spot for spot in spots if spot.best]  # only judged spots have a best move to look for
        self.every, self.samples, self.temperature, self.max_tokens, self.seed = params.every, params.samples, temperature, max_tokens, seed

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if logs is None or "reward" not in logs:
            return
        added = {f"spots/{name}": count for name, count in sorted(self.visits.items())}
        self.visits.clear()
        if self.spots and (state.global_step % self.every == 0 or state.global_step in (1, state.max_steps)):
            was_training = model.training
            model.eval()
            rates = best_move_rates(
                model, self.tokenizer, self.environment, self.spots, self.samples, self.temperature, self.max_tokens, self.seed + state.global_step
            )
            model.train(was_training)
            total = sum(spot.weight for spot in self.spots)
            added["probe/p_best"] = round(sum(spot.weight * best for spot, (best, _) in zip(self.spots, rates)) / total, 4)
            added["probe/p_invalid"] = round(sum(spot.weight * invalid for spot, (_, invalid) in zip(self.spots, rates)) / total, 4)
        logs.update(added)
        state.log_history[-1].update(added)  # the trainer appended this step's entry just before calling back
