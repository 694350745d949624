"""The answer format the student must learn: `<think>…</think>` then `<move>N</move>`."""

from __future__ import annotations

import re

_MOVE = re.compile(r"<move>(.*?)</move>", re.DOTALL)
_WELL_FORMED = re.compile(r"<think>.*?</think>.*?<move>.*?</move>", re.DOTALL)
MOVE_END = "</move>"


def extract_move(text: str) -> str | None:
    """The content of the last `<move>` block, stripped; None when there is none."""
    found = _MOVE.findall(text)
    return found[-1].strip() if found else None


def parse_cell(move: str) -> int | None:
    """A cell index 0-8 from the move text, or None when it names no cell."""
    return int(move) if len(move) == 1 and move in "012345678" else None


def is_well_formed(text: str) -> bool:
    return _WELL_FORMED.search(text) is not None


def format_answer(think: str, cell: int) -> str:
    return f"<think>{think}</think>\n<move>{cell}</move>"
