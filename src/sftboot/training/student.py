"""The student model: the embedded `builtin:tiny` (made from a config, no download) or any hub/local model.

`builtin:tiny` is a small Llama-architecture causal LM with a byte-level BPE tokenizer trained on
this task's own texts: every cell (a free cell's digit, or a taken one's mark and digit such as
`O1`) and every answer tag is a token of its own and the words between them mostly whole-word
tokens, so a board is its nine cells plus separators and a game about 240 tokens. The chat
template marks assistant turns with `{% generation %}` for assistant-only SFT loss. It is saved
with `save_pretrained` and from then on loaded like any other model.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from sftboot.core.config import BUILTIN_PREFIX, BuiltinModelParams
from sftboot.core.device import CPU
from sftboot.core.errors import UserError
from sftboot.engine.environment import Environment, game_specs

TAGS = ["<think>", "</think>", "<move>", "</move>"]
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")  # what marks a training template's answers
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def task_corpus(environment: Environment, samples: int, seed: int) -> list[str]:
    """Texts the task produces (prompts, states, feedback, answers, some malformed) to learn the tokenizer's merges from.

    Without a scripted teacher to play them, the episodes' openings and the answer tags stand in."""
    rng = random.Random(seed)
    texts = ["system\nuser\nassistant"] * 500  # role names, so the chat template costs few tokens
    try:
        teacher = environment.scripted_teacher(0.5, 1.0)
    except UserError:
        openings = [environment.episode(spec).messages for spec in game_specs(samples, seed, 0.0, 1.0, 4)]
        return texts + [message["content"] for opening in openings for message in opening] + [" ".join(TAGS)] * 100
    for spec in game_specs(samples, seed, 0.0, 1.0, 4):
        env = environment.episode(spec)
        while not env.done:
            answer = teacher.respond([env.messages], [spec.seed])[0].text if rng.random() < 0.8 else environment.refused_answer
            env.step(answer)
        texts.extend(message["content"] for message in env.messages)
    return texts


@dataclass(frozen=True)
class TokenSpec:
    """A chat format's special tokens and template: the builtin's own, or a hub model's (see `standins`)."""

    specials: tuple[str, ...]
    pad: str
    bos: str | None
    eos: str
    template: str


BUILTIN_TOKENS = TokenSpec(specials=("<|pad|>", "<|im_start|>", "<|im_end|>"), pad="<|pad|>", bos="<|im_start|>", eos="<|im_end|>", template=CHAT_TEMPLATE)


def build_tokenizer(environment: Environment, vocab_size: int, seed: int, tokens: TokenSpec = BUILTIN_TOKENS):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # The tags and the environment's units (a board's cells, say) stand alone; the text between them may merge across spaces into phrase tokens.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(rf"</?think>|</?move>|{environment.token_units}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(tokens.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        max_token_length=64,
    )
    tokenizer.train_from_iterator(task_corpus(environment, 200, seed), trainer=trainer)
    # Whole tokens, but not special ones: decoding with skip_special_tokens must keep the tags.
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAGS])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=tokens.pad,
        bos_token=tokens.bos,
        eos_token=tokens.eos,
        additional_special_tokens=[token for token in tokens.specials if token != tokens.pad],
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = tokens.template
    return wrapped


def build_builtin(environment: Environment, params: BuiltinModelParams, seed: int):
    """A freshly initialised model and its tokenizer; the same params and seed give the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(environment, params.vocab_size, seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        max_position_embeddings=params.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def _looks_like_hub_id(name: str) -> bool:
    """owner/name, where owner is no folder here: `models/rl` in a clone without models is a missing folder, not a hub repository."""
    owner, _, repo = name.partition("/")
    return bool(owner and repo) and "/" not in repo and not name.startswith((".", "~")) and owner != "models" and not Path(owner).is_dir()


def load_student(path: str | Path, dtype: torch.dtype = CPU.dtype, revision: str | None = None):
    """Model and tokenizer through `from_pretrained` (a hub id pinned to `revision`), with a pad token and left padding for batching."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(path).exists() and not _looks_like_hub_id(str(path)):
        raise UserError(
            f"no model folder at {path!s}: a fresh clone has no models until `dvc repro` trains them or `dvc pull` fetches them "
            "(a hub model is named owner/name)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, revision=revision)
    except OSError as error:
        raise UserError(f"cannot load a model from {path!s}: {str(error).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if tokenizer.chat_template is None:
        raise UserError(f"the tokenizer in {path!s} has no chat template; pick an instruction-tuned model")
    use_training_template(tokenizer)
    return model, tokenizer


def use_training_template(tokenizer) -> None:
    """Swap a known hub template for TRL's training variant, so SFT, rollouts and RL share one token stream.

    The variant marks the answers with `{% generation %}` for SFT's loss and renders earlier turns as
    they were written (Qwen3's own template drops their thinking), so a game's tokens only ever grow.
    """
    template = tokenizer.chat_template
    template = template if isinstance(template, str) else template.get("default", "")  # named variants: TRL reads the default
    if GENERATION_MARKER.search(template):  # sftboot's own, or one patched before it was saved: TRL would keep it
        return
    from trl.chat_template_utils import get_training_chat_template  # a second and more to import, so only when it can matter

    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:  # a template TRL does not know: kept as it is (SFT checks for its markers)
        return
    if patched is not None:
        tokenizer.chat_template = patched


def materialize_base(
    environment: Environment, model_name: str, builtin: BuiltinModelParams, seed: int, out: Path, dtype: torch.dtype = CPU.dtype, revision: str | None = None
) -> dict:
    """Write the starting model to `out` in `dtype`: built from config for `builtin:tiny`, else from the hub or a folder."""
    if model_name.startswith(BUILTIN_PREFIX):
        if model_name != "builtin:tiny":
            raise UserError(f"student.model: unknown builtin {model_name!r}; the embedded model is 'builtin:tiny'")
        model, tokenizer = build_builtin(environment, builtin, seed)
        model.to(dtype)
    else:
        model, tokenizer = load_student(model_name, dtype, revision)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "model": model_name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "architecture": type(model).__name__,
        "dtype": str(dtype).removeprefix("torch."),
    }
