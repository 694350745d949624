"""Model cards: each checkpoint says what it is, how it was made, how to load, serve and score it, and how it scored.

In Hugging Face's format (`huggingface_hub.ModelCard`), so `save_pretrained` folders read like hub
models. The base stage's card carries the origin's licence and hub id, and every card trained from it
inherits them; a stage writes its card with its model, and the report stage, which runs after the
evaluations, writes each card completed with its figures to models/cards/ (a stage cannot rewrite
another stage's output).
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from sftboot.core.config import BUILTIN_PREFIX, Params
from sftboot.policies import teacher_backend

LICENSE_FIELDS = ("license", "license_name", "license_link")
BUILTIN_LICENSE = "mit"  # the builtin student is built from sftboot's own code and config, under its licence
TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ body }}\n"


def _table(rows: dict) -> str:
    return "\n".join(["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in rows.items())])


def _facts(params: Params, stage: str, trained: dict) -> dict:
    """The settings a reader needs to judge the checkpoint; the rest is in the run's params.yaml."""
    facts = {"student.model": params.student.model, "student.pretrain.steps": params.student.pretrain.steps}
    if stage != "base":
        facts |= {
            "teacher.policy": (backend := teacher_backend(params.teacher))[0].label(backend[1]),
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
            "rl.difficulty": "the evaluation suites' in turn" if rl.opponents == "suites" else f"{rl.difficulty_min}–{rl.difficulty_max}",
            "rl.loss_type": rl.loss_type,
            "rl.lora.enabled": rl.lora.enabled,
        }
    return {f"`{key}`": value for key, value in facts.items()} | trained


def _slug(env_name: str) -> str:
    """The environment's name as a hub tag (a user's `file.py:Class` has characters tags cannot hold)."""
    return env_name.replace(":", "-").replace("/", "-")


def _card_data(path: Path) -> ModelCardData | None:
    return ModelCard.load(path).data if path.is_file() else None


def _hub_id(folder: Path) -> str | None:
    """The repository a hub cache snapshot came from (…/models--org--name/snapshots/<commit>)."""
    found = re.search(r"models--([^/]+)--([^/]+)/snapshots/", folder.resolve().as_posix() + "/")
    return f"{found[1]}/{found[2]}" if found else None


def origin(model: str, revision: str | None = None) -> dict:
    """Licence and hub id of the starting model, from its own card: a local folder's README.md, or the hub's
    (read by the base stage, which downloads the model from there anyway); what no card says stays unset."""
    if model.startswith(BUILTIN_PREFIX):
        return {"license": BUILTIN_LICENSE, "base_model": None}
    folder = Path(model)
    if folder.is_dir():
        data = _card_data(folder / "README.md")
        hub_id = _hub_id(folder) or (data.base_model if data else None)
    else:
        try:
            data = ModelCard.load(hf_hub_download(model, "README.md", revision=revision)).data
        except (OSError, ValueError, EntryNotFoundError):  # offline, or a repository without a card
            data = None
        hub_id = model
    return {"base_model": hub_id} | {field: getattr(data, field, None) for field in LICENSE_FIELDS}


def inherited(base_folder: Path) -> dict:
    """What the base stage's card says of the origin, for the cards of the models trained from it."""
    data = _card_data(base_folder / "README.md")
    return {field: getattr(data, field, None) for field in ("base_model", *LICENSE_FIELDS)}


def write_card(folder: Path, stage: str, params: Params, trained: dict, origin_of: dict) -> None:
    """README.md in `folder`: metadata, the recipe's settings, the training summary, and how to use it.

    `origin_of`: licence and hub id, from `origin()` for the base stage, from models/base's card (`inherited`) after it.
    """
    base, env_name = params.student.model, params.env.name
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["sftboot", _slug(env_name), {"base": "base", "sft": "sft"}.get(stage, "grpo")],
        **{key: value for key, value in origin_of.items() if value},
    )
    what = {
        "base": "The starting student, before any training on the task's answers"
        + (": built from config and pretrained on the environment's own texts" if params.student.pretrain.steps else ""),
        "sft": "The student after the SFT warm-up on the teacher's filtered games: it has learnt the answer format and legal moves",
        "rl": f"The student after multi-turn RL (TRL's GRPOTrainer) in the {env_name} environment, starting from the SFT checkpoint",
        "rl_without_sft": f"The base student after the same multi-turn RL in the {env_name} environment, without the SFT warm-up: the recipe's control",
    }[stage]
    body = f"""# sftboot student: {stage}

{what}. Its task is the multi-turn `{env_name}` environment, answered `<think>…</think><move>…</move>`.
Made by the sftboot pipeline (stage `{stage}`) from `{base}`.

## How it was made

{_table(_facts(params, stage, trained))}

## Evaluation

The pipeline's `evaluate@{stage}` stage scores this checkpoint in each of the environment's suites (exactly,
over every line an episode can take, where the environment can enumerate them) and writes `metrics/eval/{stage}.json`;
the report stage then writes this card with its figures to `models/cards/{stage}.md`. To reproduce them:

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


FIGURES = (("win", "win %"), ("draw", "draw %"), ("loss", "loss %"), ("format", "format %"), ("invalid_games", "games with an invalid move %"))


def completed_card(card_path: Path, stage: str, env_name: str, evaluation: dict) -> str:
    """The stage's card with its evaluation: a table per suite in the text and `model-index` results in the metadata."""
    card = ModelCard.load(card_path)
    card.data.model_name = f"sftboot-{_slug(env_name)}-{stage}"
    card.data.eval_results = [
        EvalResult(
            task_type="text-generation",
            task_name=f"{env_name} (multi-turn)",
            dataset_type=f"sftboot/{env_name}",
            dataset_name=f"{env_name}: {suite}",
            dataset_config=suite,
            metric_type=key,
            metric_name=name,
            metric_value=result[key]["pct"],
        )
        for suite, result in evaluation.items()
        for key, name in FIGURES
    ]
    rows = [
        f"| {suite} | {'exact' if result.get('kind') == 'exact' else 'sampled'} | " + " | ".join(f"{result[key]['pct']:.2f}" for key, _ in FIGURES) + " |"
        for suite, result in evaluation.items()
    ]
    table = ["| suite | how | " + " | ".join(name for _, name in FIGURES) + " |", "|---|---|" + "---|" * len(FIGURES), *rows]
    return f"---\n{card.data.to_yaml()}\n---\n{card.text.rstrip()}\n\n## Evaluation results\n\n" + "\n".join(table) + "\n"
