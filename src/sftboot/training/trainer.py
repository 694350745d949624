"""What SFT, pretraining and RL share: TRL trainer settings, LoRA and merging it back."""

from __future__ import annotations

from pathlib import Path

from sftboot.core.config import LoraParams
from sftboot.core.device import CPU, Placement


def lora_config(params: LoraParams):
    """PEFT LoRA settings for a causal LM, or None when LoRA is off."""
    if not params.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout, target_modules=params.target_modules, task_type="CAUSAL_LM")


def trainer_defaults(seed: int, place: Placement = CPU) -> dict:
    """Settings both trainers share: the run's device and precision, no checkpointing, a log line per step, seeded."""
    return place.trainer_args() | {
        "activation_checkpointing": False,  # costs ~25 % throughput on CPU for memory a small model does not need
        "logging_steps": 1,
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
    }


# About 50 loss lines per run (the first step's, then one every 2 % of the steps), not one per
# step: dvclive's per-step write costs ~4 % of a tiny model's step.
LOG_EVERY = {"logging_steps": 0.02, "logging_first_step": True}


def sft_config(work_dir: Path, *, steps: int, learning_rate: float, batch_size: int, warmup: float, seed: int, place: Placement = CPU, **settings):
    """TRL's SFTConfig for a cosine-scheduled run without checkpoints: pretraining and SFT differ only in `settings`."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(work_dir),
        max_steps=steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        warmup_steps=warmup,  # a float below 1 is a fraction of all steps
        lr_scheduler_type="cosine",
        save_strategy="no",
        **trainer_defaults(seed, place) | settings,
    )


def standalone(model, lora: LoraParams):
    """The trained model as plain weights: LoRA adapters merged back in."""
    return model.merge_and_unload() if lora.enabled else model
