"""A stand-in for pretraining the builtin student: language modelling on the environment's own texts.

A hub model has read the web before the recipe starts; a model built from a config knows nothing,
not even that a board's cells come in threes. This gives the builtin student that general prior
from the messages of episodes of random legal moves (the states as the model will see them). It
sees no answer format, no assistant turn and no move anyone chose on purpose, so SFT still has the
format to teach and RL still has strategy to learn.
"""

from __future__ import annotations

import random
from pathlib import Path

from sftboot.core.config import PretrainParams
from sftboot.core.device import CPU, Placement
from sftboot.core.errors import UserError
from sftboot.engine.environment import Environment, Episode, game_specs


def pretraining_texts(environment: Environment, games: int, seed: int, tokenizer) -> list[dict]:
    """The environment's messages from episodes of random legal moves, one text per episode."""
    rng = random.Random(f"pretrain:{seed}")
    if type(environment.episode(game_specs(1, seed, 0.0, 1.0)[0])).random_answer is Episode.random_answer:
        raise UserError(f"student.pretrain.steps: env {environment.name} has no random moves to pretrain on; set it to 0")
    texts = []
    for spec in game_specs(games, seed + 1, 0.0, 1.0, 8):
        env = environment.episode(spec)
        while not env.done:
            env.step(env.random_answer(rng))
        messages = [m for m in env.messages if m["role"] == "user"]
        texts.append({"text": tokenizer.apply_chat_template(messages, tokenize=False)})
    return texts


def pretrain(model, tokenizer, environment: Environment, params: PretrainParams, seed: int, work_dir: Path, callbacks: list, place: Placement = CPU):
    """Next-token training on every token of the texts; returns the model and the log history."""
    from datasets import Dataset
    from trl import SFTTrainer

    from sftboot.training.trainer import sft_config

    config = sft_config(
        work_dir,
        steps=params.steps,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size,
        warmup=0.05,
        seed=seed,
        place=place,
        max_length=None,
        dataset_text_field="text",
    )
    dataset = Dataset.from_list(pretraining_texts(environment, params.games, seed, tokenizer))
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks)
    trainer.train()
    return trainer.model, trainer.state.log_history
