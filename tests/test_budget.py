"""Token budgets that would cut the answers the student was trained on are refused, not scored as malformed."""

import shutil
import subprocess
import sys

import pytest

from sftboot.core.budget import check_budget, longest_answer, record_longest_answer
from sftboot.core.errors import UserError
from sftboot.training.student import load_student


def test_the_longest_answer_is_counted_under_the_students_template(tiny_model_dir, sft_records):
    _, tokenizer = load_student(tiny_model_dir)
    longest = longest_answer(sft_records, tokenizer)
    answers = [m["content"] for r in sft_records for m in r["messages"] if m["role"] == "assistant"]
    assert longest == max(len(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in answers)


def test_a_budget_below_the_longest_answer_is_refused_by_the_stage_setting_and_the_cli(tiny_sft_dir, tmp_path):
    model = tmp_path / "sft"
    shutil.copytree(tiny_sft_dir, model)
    record_longest_answer(model, 12)
    check_budget(model, 12, "rl.max_tokens_per_turn")
    with pytest.raises(UserError, match=r"^rl.max_tokens_per_turn: 11 tokens per turn is less than the longest answer in the SFT data \(12 tokens"):
        check_budget(model, 11, "rl.max_tokens_per_turn")
    result = subprocess.run([sys.executable, "-m", "sftboot.app.cli", "eval", "--model", str(model), "--max-tokens", "8"], capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--max-tokens: 8 tokens per turn is less than the longest answer in the SFT data (12 tokens" in result.stderr
