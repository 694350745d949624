"""What the training stages report from a trainer's log history: steps run, first and last value, and the
means over the first and last tenth of the logged values (one step's value is noisy; a trend is not)."""

from __future__ import annotations


def log_summary(history: list[dict], key: str) -> dict:
    """`key` ("loss", "reward") as first and last logged value; steps from the trainer, not from log lines."""
    values = [entry[key] for entry in history if key in entry]
    tenth = max(1, len(values) // 10)
    return {
        "steps": history[-1]["step"],
        f"first_{key}": round(values[0], 4),
        f"final_{key}": round(values[-1], 4),
        f"{key}_mean_first_tenth": round(sum(values[:tenth]) / tenth, 4),
        f"{key}_mean_last_tenth": round(sum(values[-tenth:]) / tenth, 4),
    }
