"""What the training stages report from a trainer's log history: steps run, first and last value, seconds."""

from __future__ import annotations


def log_summary(history: list[dict], key: str) -> dict:
    """`key` ("loss", "reward") as first and last logged value; steps from the trainer, not from log lines."""
    values = [entry[key] for entry in history if key in entry]
    seconds = next((entry["train_runtime"] for entry in history if "train_runtime" in entry), None)
    return {
        "steps": history[-1]["step"],
        f"first_{key}": round(values[0], 4),
        f"final_{key}": round(values[-1], 4),
        "seconds": None if seconds is None else round(seconds, 1),
    }
