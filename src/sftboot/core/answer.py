"""The answer format every environment shares: `<think>…</think>` then `<move>…</move>`, the move in the environment's own words."""

from __future__ import annotations

import re

_MOVE = re.compile(r"<move>(.*?)</move>", re.DOTALL)
_WELL_FORMED = re.compile(r"<think>.*?</think>.*?<move>.*?</move>", re.DOTALL)
MOVE_END = "</move>"


def extract_move(text: str) -> str | None:
    """The content of the last `<move>` block, stripped; None when there is none."""
    found = _MOVE.findall(text)
    return found[-1].strip() if found else None


def is_well_formed(text: str) -> bool:
    return _WELL_FORMED.search(text) is not None


def format_answer(think: str, move: object) -> str:
    return f"<think>{think}</think>\n<move>{move}</move>"
