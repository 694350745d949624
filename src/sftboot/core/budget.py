"""Per-turn token budgets that cannot cut answers silently.

The SFT stage records, next to the model it writes, how many tokens the longest answer in its data
takes under the student's own tokenizer and chat template; RL, evaluation and the CLI refuse a
per-turn budget below that, since every longer answer would be cut and scored malformed.
"""

from __future__ import annotations

import json
from pathlib import Path

from sftboot.core.answer import MOVE_END
from sftboot.core.errors import UserError

FACTS_FILE = "sftboot.json"


def _answer_tokens(run: list[int], tokenizer) -> int:
    """Tokens up to and including the end of `</move>`, where generation stops."""
    for count in range(1, len(run) + 1):
        if MOVE_END in tokenizer.decode(run[:count]):
            return count
    return len(run)


def longest_answer(records: list[dict], tokenizer) -> int:
    """The most tokens any answer in `records` takes as the chat template renders it (its `{% generation %}` span)."""
    longest = 0
    for record in records:
        rendered = tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        run: list[int] = []
        for token, trained in zip([*rendered["input_ids"], None], [*rendered["assistant_masks"], 0]):
            if trained:
                run.append(token)
            elif run:
                longest, run = max(longest, _answer_tokens(run, tokenizer)), []
    return longest


def record_longest_answer(folder: Path, tokens: int) -> None:
    (folder / FACTS_FILE).write_text(json.dumps({"longest_answer_tokens": tokens}) + "\n")


def check_budget(folder: Path, budget: int, setting: str) -> None:
    """Refuse `budget` tokens per turn for a model trained on longer answers; a model without the record passes."""
    facts = Path(folder) / FACTS_FILE
    if not facts.exists():
        return
    needed = json.loads(facts.read_text())["longest_answer_tokens"]
    if budget < needed:
        raise UserError(
            f"{setting}: {budget} tokens per turn is less than the longest answer in the SFT data ({needed} tokens for this "
            f"model), so answers would be cut and scored malformed; raise it to at least {needed}"
        )
