"""Model cards: each trained checkpoint says what it is, how it was made, and how to load, serve and score it.

Written by the stage that trains the model, in Hugging Face's format (`huggingface_hub.ModelCard`),
so `save_pretrained` folders read like hub models. The evaluation comes from the evaluate stage,
which runs after the card is written; the card says where its figures are and how to reproduce them.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from sftboot.config import Params
from sftboot.student import BUILTIN_PREFIX

TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ body }}\n"


def _table(rows: dict) -> str:
    return "\n".join(["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in rows.items())])


def _facts(params: Params, stage: str, trained: dict) -> dict:
    """The settings a reader needs to judge the checkpoint; the rest is in the run's params.yaml."""
    facts = {
        "student.model": params.student.model,
        "teacher.policy": params.teacher.policy if params.teacher.policy == "scripted" else f"openai: {params.teacher.openai.model}",
        "teacher.games": params.teacher.games,
        "filter.keep": ", ".join(params.filter.keep),
        "sft.max_steps": params.sft.max_steps,
        "sft.learning_rate": params.sft.learning_rate,
        "sft.lora.enabled": params.sft.lora.enabled,
    }
    if stage.startswith("rl"):
        rl = params.rl
        facts |= {
            "rl.steps": rl.steps,
            "rl.games_per_step": rl.games_per_step,
            "rl.learning_rate": rl.learning_rate,
            "rl.temperature": rl.temperature,
            "rl.opponent_p": f"{rl.opponent_p_min}–{rl.opponent_p_max}",
            "rl.loss_type": rl.loss_type,
            "rl.lora.enabled": rl.lora.enabled,
        }
    return {f"`{key}`": value for key, value in facts.items()} | trained


def write_card(folder: Path, stage: str, params: Params, trained: dict) -> None:
    """README.md in `folder`: metadata, the recipe's settings, the training summary, and how to use it."""
    base, env_name = params.student.model, params.env.name
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        base_model=None if base.startswith(BUILTIN_PREFIX) or Path(base).exists() else base,
        tags=["sftboot", env_name.replace(":", "-").replace("/", "-"), "sft" if stage == "sft" else "grpo"],
        license="mit",
    )
    what = {
        "sft": "The student after the SFT warm-up on the teacher's filtered games: it has learnt the answer format and legal moves",
        "rl": f"The student after multi-turn RL (TRL's GRPOTrainer) in the {env_name} environment, starting from the SFT checkpoint",
        "rl_without_sft": f"The base student after the same multi-turn RL in the {env_name} environment, without the SFT warm-up: the recipe's control",
    }[stage]
    body = f"""# sftboot student: {stage}

{what}. It plays the multi-turn `{env_name}` environment and answers `<think>…</think><move>…</move>`.
Made by the sftboot pipeline (stage `{stage}`) from `{base}`.

## How it was made

{_table(_facts(params, stage, trained))}

## Evaluation

The pipeline's `evaluate@{stage}` stage scores this checkpoint in each of the environment's suites (exactly,
over every line an episode can take, where the environment can enumerate them) and writes `metrics/eval/{stage}.json`
and the run's `report.md`. To reproduce it from this folder:

```bash
sftboot eval --model models/{stage}
```

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("models/{stage}")
model = AutoModelForCausalLM.from_pretrained("models/{stage}")
messages = [{{"role": "system", "content": "<the environment's rules>"}}, {{"role": "user", "content": "<its first message>"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
print(tokenizer.decode(model.generate(**inputs, max_new_tokens=32)[0]))
```

Serve it with an OpenAI-compatible API, and play or evaluate it through that:

```bash
transformers serve --host 127.0.0.1 --port 8000 &
sftboot eval --model openai:$PWD/models/{stage} --base-url http://127.0.0.1:8000/v1 --api-key-env ANY_SET_VARIABLE
sftboot play models/{stage} --show-thinking
```
"""
    card = ModelCard.from_template(data, template_str=TEMPLATE, body=body)
    (folder / "README.md").write_text(card.content)
