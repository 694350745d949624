"""Multi-turn RL with TRL's GRPOTrainer: a `rollout_func` that plays whole games in the environment.

The prompt is the game's opening (system + first environment message); the completion is every
later token of the game, the environment's turns masked out with `env_mask`, the model's tokens
carrying their sampling log-probs. Rewards are the environment's own outcome, format and
invalid-move scores, passed to the reward functions as extra fields, never re-parsed from text.

TRL hands `rollout_func` each prompt already repeated `num_generations` times in a row; each such
block is one GRPO group and plays one game seed (same opening, same opponent p) many times. A share
of the groups (`rl.weak_spots.share`) starts instead at a position where the student's exact
evaluation loses reward, the earlier turns replayed as the conversation (sftboot.training.weakspots); the
spots come from the starting model's evaluation and are found anew on the model in training.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback

from sftboot.core.config import RLParams
from sftboot.core.device import CPU, Placement
from sftboot.core.errors import UserError
from sftboot.engine.environment import Environment, GameSpec, game_specs
from sftboot.engine.generation import StudentPolicy
from sftboot.engine.rollout import play_games
from sftboot.training.spotprobe import SpotProbe
from sftboot.training.weakspots import WeakSpot, WeakSpots, passes_through


def prompt_dataset(params: RLParams, environment: Environment, seed: int):
    """One opening per GRPO group the run will play, drawn like the games themselves."""
    from datasets import Dataset

    groups = params.steps * params.games_per_step // params.num_generations
    specs = game_specs(groups, seed, params.difficulty_min, params.difficulty_max, params.num_groups)
    return Dataset.from_list([{"prompt": environment.episode(spec).messages} for spec in specs])


def group_difficulty(group: int, params: RLParams, environment: Environment, position: float) -> float:
    """The group's opponent p: the evaluation suite whose turn it is (lowest p first), or the point
    `position` (in [0, 1)) of the group's stratum of [p_min, p_max]; either way each step spans every difficulty."""
    if params.opponents == "suites":
        suites = sorted(environment.suites.values())
        return suites[group % len(suites)]
    width = (params.difficulty_max - params.difficulty_min) / params.num_groups
    return round(params.difficulty_min + width * (group % params.num_groups + position), 6)


def group_spec(prompt: list[dict], seed: int, step: int, group: int, params: RLParams, environment: Environment) -> GameSpec:
    """A game for one GRPO group that opens exactly like `prompt`, drawn from (seed, step, group): its
    difficulty from `group_difficulty`, its seed redrawn until the opening matches (who starts, the environment's first move)."""
    rng = random.Random(f"rl:{seed}:{step}:{group}")
    p = group_difficulty(group, params, environment, rng.random())  # drawn in both modes, so they play the same game seeds
    for _ in range(10_000):
        spec = GameSpec(game_id=group, seed=rng.randrange(2**31), p=p)
        if environment.episode(spec).messages == prompt:
            return spec
    raise ValueError("no game seed reproduces this opening")


def make_rollout_func(params: RLParams, environment: Environment, seed: int, tokenizer, answers: Counter, spots: WeakSpots, visits: Counter):
    """TRL's rollout_func; `answers` counts the games, the model's answers and those cut at `rl.max_tokens_per_turn`;
    `visits` how the step's games met the weak spots (see `count_visits`). A group that `spots` sends to a
    weak spot plays from there instead of its dataset opening (the prompt TRL trains on is the game's own)."""

    def rollout_func(prompts: list[list[dict]], trainer) -> dict:
        step = trainer.state.global_step
        size = params.num_generations
        process = trainer.accelerator.process_index  # several processes: each plays its own share of the step's groups
        first_group = process * (len(prompts) // size)
        specs, started_at = [], []
        for local in range(len(prompts) // size):
            if any(prompt != prompts[local * size] for prompt in prompts[local * size : (local + 1) * size]):
                raise RuntimeError("a GRPO group reached rollout_func split across processes; rl.games_per_step must divide evenly")
            group = first_group + local
            spot = spots.draw(seed, step, group)
            spec = spot.spec if spot else group_spec(prompts[local * size], seed, step, group, params, environment)
            started_at.append(spot)
            specs += [GameSpec(game_id=group * size + k, seed=spec.seed, p=spec.p, opening=spec.opening) for k in range(size)]
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        policy = StudentPolicy(
            model,
            tokenizer,
            max_tokens_per_turn=params.max_tokens_per_turn,
            temperature=params.temperature,
            max_tokens_per_game=params.max_tokens_per_game,
            record_traces=True,
            policy_id="student:rl",
            seed=seed * 1_000_003 + step + 7919 * process,
        )
        games = play_games(
            environment,
            policy,
            specs,
            batch_size=len(specs),
            description=f"rl step {step + 1} games",
            forfeit_invalid=params.forfeit_invalid,
        )
        model.train(was_training)
        answers.update(games=games.height, total=int(games["turns"].sum()), at_cap=int(games["answers_at_cap"].sum()))
        visits.update(count_visits(games, started_at, size, spots.spots))
        played = list(games.iter_rows(named=True))
        rewards = {f"reward_{name}": [part.score(game) for game in played] for name, part in environment.reward_parts().items()}
        return {
            "prompt_ids": games["prompt_ids"].to_list(),
            "completion_ids": games["completion_ids"].to_list(),
            "logprobs": games["sampling_logprobs"].to_list(),
            "env_mask": games["env_mask"].to_list(),
            **rewards,
        }

    return rollout_func


def count_visits(games, started_at: list[WeakSpot | None], size: int, spots: list[WeakSpot]) -> Counter:
    """How the step's games met the weak spots: groups started at one, games from an opening that passed
    through one, and groups whose games there scored differently (GRPO's only signal at the spot)."""
    counted = Counter()
    for index, spot in enumerate(started_at):
        group = games.slice(index * size, size)
        if spot is None:
            met = [
                reward
                for moves, opened, reward in zip(group["moves"].to_list(), group["opponent_started"].to_list(), group["reward_total"].to_list())
                if any(passes_through(moves, opened, weak) for weak in spots)
            ]
            counted["opening_games_at_spots"] += len(met)
        else:
            met = group["reward_total"].to_list()
            counted["spot_groups"] += 1
        counted["groups_with_signal_at_spots"] += len(set(met)) > 1
    return counted


def reward_funcs(weights: dict[str, float], environment: Environment) -> dict[str, tuple[Callable, float]]:
    """TRL's reward functions, one per reward part of the environment, each with its `rl.reward_weights` weight; a weight
    the environment has no part for must be 0, and each part needs one (0 leaves it out of the reward)."""
    parts = environment.reward_parts()
    stray = [name for name, weight in weights.items() if name not in parts and weight]
    if stray:
        raise UserError(
            f"params.yaml: rl.reward_weights.{stray[0]}: {environment.name} has no reward part {stray[0]!r}; weigh its parts: {', '.join(parts)} (or set it to 0)"
        )
    if missing := [name for name in parts if name not in weights]:
        raise UserError(
            f"params.yaml: rl.reward_weights.{missing[0]}: missing; weigh {environment.name}'s part {missing[0]!r} ({parts[missing[0]].meaning}), 0 to leave it out"
        )

    def passed_on(name: str) -> Callable:
        def reward(completions, **columns) -> list[float]:
            return list(columns[f"reward_{name}"])

        reward.__name__ = f"{name}_reward"  # TRL logs it as rewards/<name>_reward/mean
        return reward

    return {name: (passed_on(name), weights[name]) for name in parts}


class ZeroVarianceWarning(TrainerCallback):
    """GRPO learns nothing from a group whose games all scored the same; say so when no group varies."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and logs.get("frac_reward_zero_std") == 1.0:
            warnings.warn(
                f"rl step {state.global_step}: every group's games scored the same, so this step had no "
                "learning signal; raise rl.temperature or rl.num_generations, or widen the opponent range",
                stacklevel=1,
            )


def latest_checkpoint(work_dir: Path) -> Path | None:
    checkpoints = sorted(work_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def train_rl(
    model,
    tokenizer,
    params: RLParams,
    environment: Environment,
    seed: int,
    work_dir: Path,
    callbacks: list,
    place: Placement = CPU,
    spots: list[WeakSpot] = (),
    teacher_games=None,
):
    """GRPO on whole games, a share of them from the starting student's weak `spots`, with `rl.imitation` on the
    `teacher_games` (the kept games SFT learned from) where given; resumes from the newest checkpoint in `work_dir` when a run was
    cut short (the spots then start from `spots` again).

    Returns the trained model, the log history, and the games played, answers given and answers cut at the token budget."""
    from trl import GRPOConfig

    from sftboot.training.imitation import ImitationMix, imitating_trainer
    from sftboot.training.trainer import lora_config, standalone, trainer_defaults

    suites, groups = len(environment.suites), params.games_per_step // params.num_generations
    if params.opponents == "suites" and groups < suites:
        raise UserError(
            f"params.yaml: rl.opponents: suites plays each of the environment's {suites} evaluation suites in a GRPO group of "
            f"every step, but a step has {groups}; raise rl.games_per_step to {suites * params.num_generations} or use opponents: range"
        )
    rewards = reward_funcs(params.reward_weights, environment)
    config = GRPOConfig(
        output_dir=str(work_dir),
        max_steps=params.steps,
        learning_rate=params.learning_rate,
        lr_scheduler_type="constant",
        per_device_train_batch_size=params.games_per_step // place.processes,  # whole groups per process (config checks)
        gradient_accumulation_steps=1,
        num_generations=params.num_generations,
        temperature=params.temperature,
        max_completion_length=params.max_tokens_per_game,
        loss_type=params.loss_type,
        epsilon_high=params.epsilon_high,  # unset, CISPO would cap every importance weight at 0.2
        beta=params.beta,
        reward_weights=[weight for _, weight in rewards.values()],
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=1,
        log_completions=False,
        **trainer_defaults(seed, place),
    )
    imitating = teacher_games is not None and params.imitation.weight
    mix = ImitationMix.from_games(teacher_games, environment, tokenizer, params.imitation.batch_size, seed) if imitating else None
    trainer = imitating_trainer(mix, params.imitation.weight)(
        model=model,
        reward_funcs=[reward for reward, _ in rewards.values()],
        args=config,
        train_dataset=prompt_dataset(params, environment, seed),
        processing_class=tokenizer,
        peft_config=lora_config(params.lora),
        rollout_func=make_rollout_func(
            params, environment, seed, tokenizer, answers := Counter(), weak := WeakSpots(list(spots), params.weak_spots, environment), visits := Counter()
        ),
        callbacks=[
            ZeroVarianceWarning(),
            weak.refresher(tokenizer, params.max_tokens_per_turn, seed),
            SpotProbe(environment, tokenizer, list(spots)[: params.probe.spots], visits, params.probe, params.temperature, params.max_tokens_per_turn, seed),
            *callbacks,
        ],
    )
    checkpoint = latest_checkpoint(work_dir)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    names = ("games", "total", "at_cap")
    counted = trainer.accelerator.reduce(torch.tensor([answers[name] for name in names]), reduction="sum").tolist()  # every process's
    return standalone(trainer.model, params.lora), trainer.state.log_history, Counter(dict(zip(names, counted)))
