"""SFT warm-up with TRL's SFTTrainer: loss on the answers (or on every token), optional LoRA merged back.

Loss on every token (`sft.assistant_only_loss: false`, TRL's own default for chat data) also
trains the student to predict the environment's messages: each board and the list of free cells
that follows it, practice at reading the board for a student built from a config; the default
keeps the reference's answer-only loss (docs/results.md has what each gave).
"""

from __future__ import annotations

import json
from pathlib import Path

from sftboot.core.config import SFTParams
from sftboot.core.device import CPU, Placement
from sftboot.core.errors import UserError
from sftboot.training.trainer import LOG_EVERY, lora_config, sft_config, standalone


def count_truncated(records: list[dict], tokenizer, max_length: int) -> dict:
    """How many examples exceed `max_length` tokens once templated (SFTTrainer cuts them)."""
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in records]
    return {
        "examples": len(lengths),
        "truncated": sum(n > max_length for n in lengths),
        "max_tokens": max(lengths),
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
    }


def read_records(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is missing or not JSON lines ({error}); rerun `dvc repro validate`") from None


def train_sft(model, tokenizer, records: list[dict], params: SFTParams, seed: int, work_dir: Path, callbacks: list, place: Placement = CPU):
    """Run SFT and return the trained (LoRA-merged) model and the trainer's log history."""
    from datasets import Dataset
    from trl import SFTTrainer
    from trl.chat_template_utils import has_generation_markers

    if params.assistant_only_loss and not has_generation_markers(tokenizer.chat_template):
        raise UserError(
            "sft.assistant_only_loss: the student's chat template has no {% generation %} markers and TRL has no training "
            "variant of it; add the markers around the assistant turn in its chat_template.jinja, or set sft.assistant_only_loss: false"
        )
    config = sft_config(
        work_dir,
        steps=params.max_steps,
        learning_rate=params.learning_rate,
        batch_size=params.batch_size // place.processes,  # the processes share one batch of sft.batch_size
        warmup=params.warmup_ratio,
        seed=seed,
        place=place,
        num_train_epochs=params.epochs,
        max_length=params.max_length,
        assistant_only_loss=params.assistant_only_loss,
        **LOG_EVERY,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora_config(params.lora),
        callbacks=callbacks,
    )
    trainer.train()
    return standalone(trainer.model, params.lora), trainer.state.log_history
