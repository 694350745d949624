"""Hub architectures (Llama 3, Qwen3, LFM2 stand-ins with their real chat templates) through every step
the pipeline takes with them: SFT labels, batched decoding, RL's log-probs, LoRA merging, the whole DVC run."""

import json

import pytest
import torch
from conftest import compose_params, dvc, run_stages_in_process, snapshot_repo
from huggingface_hub import ModelCard

import sftboot.engine.generation as generation
from sftboot.core.config import defaults
from sftboot.engine.environment import game_specs
from sftboot.engine.rollout import play_games
from sftboot.envs import builtin
from sftboot.training.sft import train_sft
from sftboot.training.standins import ARCHITECTURES, LICENSES, build_standin
from sftboot.training.student import load_student
from sftboot.training.trainer import sft_config

END_OF_TURN = {"llama3": "<|eot_id|>", "qwen3": "<|im_end|>", "lfm2": "<|im_end|>"}


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return {arch: build_standin(arch, root / arch) for arch in ARCHITECTURES}


@pytest.fixture(scope="module")
def loud_standins(tmp_path_factory):
    """Weights drawn with std 0.5, so every earlier token (a pad included) moves the logits."""
    root = tmp_path_factory.mktemp("loud")
    return {arch: build_standin(arch, root / arch, seed=1, init_std=0.5) for arch in ARCHITECTURES}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sft_trains_exactly_the_assistant_tokens_of_trls_training_template(arch, standins, sft_records):
    from datasets import Dataset
    from trl import SFTTrainer

    model, tokenizer = load_student(standins[arch])
    assert "generation" in tokenizer.chat_template  # TRL's training variant replaced the hub template
    records = sft_records[:4]
    config = sft_config(
        standins[arch].parent / f"sft-{arch}", steps=1, learning_rate=1e-3, batch_size=1, warmup=0, seed=0, assistant_only_loss=True, max_length=1024
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(records), processing_class=tokenizer)
    for record, example in zip(records, trainer.train_dataset):
        labels = trainer.data_collator([example])["labels"][0].tolist()
        runs, run = [], []
        for token, label in zip(example["input_ids"], labels):
            if label != -100:
                run.append(token)
            elif run:
                runs, run = runs + [run], []
        runs += [run] if run else []
        answers = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert len(runs) == len(answers)  # one trained run per answer, nothing else
        rendered = tokenizer.apply_chat_template(record["messages"], tokenize=False)
        for run, answer in zip(runs, answers):
            text = tokenizer.decode(run)
            assert text.rstrip("\n").endswith(END_OF_TURN[arch])  # the model learns to stop
            assert text.split("<move>")[-1] == answer.split("<move>")[-1] + END_OF_TURN[arch] + text[len(text.rstrip("\n")) :]
            assert text in rendered and "Board" not in text and "board" not in text


class RecordingBatch(generation.KVBatch):
    """Keeps each row's tokens and next-token logits at every feed."""

    feeds: list[tuple[list[int], torch.Tensor]] = []

    def feed(self, streams):
        logits = super().feed(streams)
        RecordingBatch.feeds += [(list(self.tokens[row]), logits[row].clone()) for row, tokens in enumerate(streams) if tokens]
        return logits


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_batched_decoding_gives_the_logits_of_one_game_at_a_time(arch, loud_standins, monkeypatch):
    """Games of different lengths decoded together, several turns deep: each row's logits are the
    ones the model gives that row's tokens alone (float64, so only the algorithm can differ)."""
    model, tokenizer = load_student(loud_standins[arch])
    model.to(torch.float64).eval()
    monkeypatch.setattr(generation, "KVBatch", RecordingBatch)
    RecordingBatch.feeds = []
    policy = generation.StudentPolicy(model, tokenizer, max_tokens_per_turn=8, temperature=1.0, seed=1)
    play_games(builtin("tictactoe", max_turns=5), policy, game_specs(6, seed=0, p_min=0.0, p_max=1.0, num_groups=3), batch_size=6)
    prompt = min(len(tokens) for tokens, _ in RecordingBatch.feeds)
    assert max(len(tokens) for tokens, _ in RecordingBatch.feeds) > prompt + 3 * 40  # several turns in
    with torch.no_grad():
        for tokens, logits in RecordingBatch.feeds:
            alone = model(torch.tensor([tokens])).logits[0, -1].float()
            assert (alone - logits).abs().max() < 1e-4, f"{len(tokens)} tokens in"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_rl_recomputes_the_sampling_logprobs_on_the_model_tokens(arch, standins):
    """As GRPO does: prompts left-padded, completions right-padded, one forward over the batch.

    A left-padded prompt sits at shifted positions there, which RoPE (its angles in float32) turns
    into rounding that large weights amplify, so this runs the stand-ins as they are made."""
    from trl.trainer.utils import pad

    model, tokenizer = load_student(standins[arch])
    model.eval()
    policy = generation.StudentPolicy(model, tokenizer, max_tokens_per_turn=8, temperature=0.8, max_tokens_per_game=40, record_traces=True, seed=2)
    games = play_games(builtin("tictactoe", max_turns=5), policy, game_specs(6, seed=1, p_min=0.0, p_max=1.0, num_groups=3), batch_size=6)
    prompts = [torch.tensor(ids) for ids in games["prompt_ids"]]
    completions = [torch.tensor(ids) for ids in games["completion_ids"]]
    prompt_ids = pad(prompts, padding_value=tokenizer.pad_token_id, padding_side="left")
    completion_ids = pad(completions, padding_value=tokenizer.pad_token_id, padding_side="right")
    mask = torch.cat(
        [pad([torch.ones_like(p) for p in prompts], 0, padding_side="left"), pad([torch.ones_like(c) for c in completions], 0, padding_side="right")], 1
    )
    with torch.no_grad():
        logits = model(input_ids=torch.cat([prompt_ids, completion_ids], 1), attention_mask=mask).logits.float()
    logits = logits[:, prompt_ids.shape[1] - 1 : -1] / 0.8
    recomputed = torch.log_softmax(logits, -1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    worst = 0.0
    for row, (env_mask, sampled) in enumerate(zip(games["env_mask"], games["sampling_logprobs"])):
        model_tokens = torch.tensor(env_mask).bool()
        assert model_tokens.sum() > 0
        worst = max(worst, (recomputed[row, : len(env_mask)][model_tokens] - torch.tensor(sampled)[model_tokens]).abs().max().item())
    assert worst < 1e-4, worst


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_lora_merged_model_reloads_with_identical_outputs(arch, standins, sft_records, tmp_path):
    model, tokenizer = load_student(standins[arch])
    params = defaults("sft", max_steps=3, batch_size=4, learning_rate=1e-2, lora={"enabled": True})
    merged, _ = train_sft(model, tokenizer, sft_records[:12], params, seed=0, work_dir=tmp_path / "work", callbacks=[])
    assert not hasattr(merged, "peft_config")  # plain weights, loadable without PEFT
    merged.save_pretrained(tmp_path / "out")
    tokenizer.save_pretrained(tmp_path / "out")
    reloaded, _ = load_student(tmp_path / "out")
    ids = torch.tensor([tokenizer.apply_chat_template(sft_records[0]["messages"], tokenize=True, return_dict=True)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(merged.eval()(ids).logits, reloaded.eval()(ids).logits)


THROUGH_DVC = "lfm2"  # the gpu profile's architecture
STUDENT_STAGES = ("teacher", "filter", "validate", "base", "sft", "eval_plan", "evaluate sft", "rl", "evaluate base", "evaluate rl")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_standin_runs_the_micro_pipeline_from_base_to_rl_with_lora(arch, standins, project):
    """Every stage a student passes through (the control and the report are the default's, tested in test_pipeline).
    The gpu profile's architecture runs through `dvc exp run` as a user's would; the others run the same stage
    scripts in dvc.yaml's order in this process, since DVC schedules every architecture alike and a stage process
    spends most of its time importing torch, transformers and TRL."""
    overrides = ["profile=micro", f"student.model={standins[arch]}", "sft.lora.enabled=true", "rl.lora.enabled=true"]
    if arch == THROUGH_DVC:
        repo = snapshot_repo(project / "repo")
        dvc(repo, "exp", "run", *[arg for override in overrides for arg in ("-S", override)], "evaluate@base", "evaluate@rl")
    else:
        repo = project
        compose_params(repo, [*overrides, "compute.portable=false"])  # this process's kernels are chosen already
        run_stages_in_process(repo, *STUDENT_STAGES)
    base = json.loads((repo / "metrics/base.json").read_text())
    assert base["architecture"] == {"llama3": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM", "lfm2": "Lfm2ForCausalLM"}[arch]
    for name in ("base", "sft", "rl"):
        metrics = json.loads((repo / f"metrics/eval/{name}.json").read_text())
        assert metrics["optimal"]["kind"] == "exact" and metrics["optimal"]["probability_total"] == pytest.approx(1.0)
        model, tokenizer = load_student(repo / f"models/{name}")
        assert type(model).__name__ == base["architecture"] and "generation" in tokenizer.chat_template
    assert json.loads((repo / "metrics/rl.json").read_text())["steps"] == 1
    assert ModelCard.load(repo / "models/rl/README.md").data.license == LICENSES[arch]["license"]  # the hub model's, inherited
