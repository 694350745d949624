"""The embedded student and the SFT warm-up."""

import pytest
import torch
from conftest import TINY

from sftboot.core.config import defaults
from sftboot.envs import builtin
from sftboot.training.sft import count_truncated, train_sft
from sftboot.training.student import build_builtin, load_student


def test_builtin_reloads_through_from_pretrained_with_the_same_weights(tiny_model_dir):
    model, tokenizer = load_student(tiny_model_dir)
    rebuilt, _ = build_builtin(builtin("tictactoe"), defaults("student.builtin", **TINY), seed=0)
    for (name, loaded), (_, fresh) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
        assert torch.equal(loaded, fresh), name
    other, _ = build_builtin(builtin("tictactoe"), defaults("student.builtin", **TINY), seed=1)
    assert not torch.equal(next(iter(other.parameters())), next(iter(rebuilt.parameters())))
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_tokenizer_keeps_cells_and_tags_whole(tiny_model_dir):
    _, tokenizer = load_student(tiny_model_dir)
    answer = "<think>block</think><move>7</move>"
    pieces = tokenizer.tokenize(answer)
    assert pieces[0] == "<think>" and "<move>" in pieces and "7" in pieces and pieces[-1] == "</move>"
    ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == answer  # the tags are text, not control tokens


def test_chat_template_marks_exactly_the_assistant_turns(tiny_model_dir, sft_records):
    _, tokenizer = load_student(tiny_model_dir)
    messages = sft_records[0]["messages"]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    trained = tokenizer.decode([t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m])
    expected = "".join(m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant")
    assert trained == expected


def _loss_by_mask(model, tokenizer, records):
    """Mean next-token loss on assistant tokens and on all other tokens."""
    losses = {True: [], False: []}
    with torch.no_grad():
        for record in records:
            encoded = tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            ids = torch.tensor([encoded["input_ids"]])
            logits = model(ids).logits[0, :-1]
            token_losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            for loss, mask in zip(token_losses, encoded["assistant_masks"][1:]):
                losses[bool(mask)].append(float(loss))
    return sum(losses[True]) / len(losses[True]), sum(losses[False]) / len(losses[False])


@pytest.mark.parametrize("assistant_only", [True, False])
def test_sft_trains_on_the_answers_or_on_every_token(tiny_model_dir, sft_records, tmp_path, assistant_only):
    """`sft.assistant_only_loss`: the answers' loss falls either way; the boards' and free-cell lists' only when asked."""
    model, tokenizer = load_student(tiny_model_dir)
    records = sft_records[:24]
    before_assistant, before_other = _loss_by_mask(model, tokenizer, records)
    params = defaults("sft", epochs=1, max_steps=12, learning_rate=3e-3, batch_size=8, max_length=1024, assistant_only_loss=assistant_only)
    trained, history = train_sft(model, tokenizer, records, params, seed=0, work_dir=tmp_path, callbacks=[])
    after_assistant, after_other = _loss_by_mask(trained, tokenizer, records)
    assert after_assistant < before_assistant - 0.5
    if assistant_only:  # what is not trained on moves far less than what is
        assert (before_other - after_other) < 0.5 * (before_assistant - after_assistant)
    else:
        assert before_other - after_other > 0.5
    assert [entry for entry in history if "loss" in entry]


def test_sft_trains_on_assistant_tokens_only(tiny_model_dir, sft_records, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_student(tiny_model_dir)
    config = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, max_length=1024, report_to=[], bf16=False, activation_checkpointing=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(sft_records[:4]), processing_class=tokenizer)
    for example, record in zip(trainer.train_dataset, sft_records[:4]):
        assistant_tokens = sum(label != -100 for label in example["labels"])
        assert assistant_tokens == sum(
            len(tokenizer(m["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]) for m in record["messages"] if m["role"] == "assistant"
        )
        batch = trainer.data_collator([example])
        assert int((batch["labels"] != -100).sum()) == assistant_tokens


def test_truncation_is_counted(tiny_model_dir, sft_records):
    _, tokenizer = load_student(tiny_model_dir)
    counts = count_truncated(sft_records, tokenizer, max_length=200)
    assert counts["truncated"] > 0 and counts["examples"] == len(sft_records)
    assert count_truncated(sft_records, tokenizer, max_length=10_000)["truncated"] == 0


def test_lora_sft_is_merged_into_a_standalone_model(tiny_model_dir, sft_records, tmp_path):

    model, tokenizer = load_student(tiny_model_dir)
    base = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    params = defaults("sft", max_steps=3, learning_rate=1e-2, batch_size=4, lora={"enabled": True, "r": 4, "alpha": 8})
    trained, _ = train_sft(model, tokenizer, sft_records[:8], params, seed=0, work_dir=tmp_path, callbacks=[])
    assert type(trained).__name__ == "LlamaForCausalLM"
    merged = trained.state_dict()
    assert set(merged) == set(base)  # no adapter weights left over
    assert any(not torch.equal(base[name], merged[name]) for name in base if "proj" in name)
    assert all(torch.equal(base[name], merged[name]) for name in base if "norm" in name)
    trained.save_pretrained(tmp_path / "merged")
    tokenizer.save_pretrained(tmp_path / "merged")
    reloaded, _ = load_student(tmp_path / "merged")
    assert all(torch.equal(tensor, merged[name]) for name, tensor in reloaded.state_dict().items())


def test_tokenizer_gives_every_cell_a_token_of_its_own(tiny_model_dir):
    from sftboot.envs.tictactoe.board import render

    _, tokenizer = load_student(tiny_model_dir)
    pieces = tokenizer.tokenize(render("XO  X   O"))
    cells = [piece for piece in pieces if piece.strip("XO").isdigit()]
    assert cells == ["X0", "O1", "2", "3", "X4", "5", "6", "7", "O8"]
    assert len(pieces) == 17  # nine cells and eight separators


def test_pretraining_texts_hold_the_environment_but_no_answer(tiny_model_dir):
    from sftboot.training.pretrain import pretraining_texts

    _, tokenizer = load_student(tiny_model_dir)
    texts = [record["text"] for record in pretraining_texts(builtin("tictactoe"), 20, 0, tokenizer)]
    assert len(texts) == 20 and len(set(texts)) == 20
    joined = "\n".join(texts)
    assert "Available positions" in joined and "Opponent (O) played" in joined
    for forbidden in ("<move>", "<think>", "assistant", "You play tic-tac-toe"):
        assert forbidden not in joined
    assert pretraining_texts(builtin("tictactoe"), 20, 0, tokenizer) == pretraining_texts(builtin("tictactoe"), 20, 0, tokenizer)
