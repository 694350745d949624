"""Offline stand-ins for hub students: tiny random-weight Llama 3, Qwen3 and LFM2 models with their real chat templates.

Each is the hub model's architecture at toy size, with the exact template its hub tokenizer ships
(TRL keeps copies, and recognises them to patch in its training variant) and a tokenizer that has
that template's special tokens. Saved with `save_pretrained`, a stand-in folder is used as
`student.model=<folder>` exactly like a downloaded model: `sftboot standin lfm2 models/hub/lfm2`.
"""

from __future__ import annotations

from pathlib import Path

from sftboot.core.errors import UserError

# Each hub chat format: its special tokens, and the name of TRL's copy of its template (imported when
# a stand-in is built, so that listing the architectures, as the CLI does, costs no torch or TRL import).
TOKENS = {
    "llama3": dict(
        specials=("<|finetune_right_pad_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        pad="<|finetune_right_pad_id|>",
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        template="llama3_chat_template",
    ),
    "qwen3": dict(
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        pad="<|endoftext|>",
        bos=None,
        eos="<|im_end|>",
        template="qwen3_chat_template",
    ),
    "lfm2": dict(
        specials=(
            "<|pad|>",
            "<|startoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|tool_list_start|>",
            "<|tool_list_end|>",
            "<|tool_response_start|>",
            "<|tool_response_end|>",
        ),
        pad="<|pad|>",
        bos="<|startoftext|>",
        eos="<|im_end|>",
        template="lfm2_chat_template",
    ),
}
ARCHITECTURES = tuple(TOKENS)
# The hub models' licences (Llama 3.2, Qwen3, LFM2), in the card a stand-in carries as a downloaded model does
LICENSES = {
    "llama3": {"license": "llama3.2"},
    "qwen3": {"license": "apache-2.0"},
    "lfm2": {"license": "other", "license_name": "lfm1.0", "license_link": "LICENSE"},
}


def _config(arch: str, vocab_size: int, tokenizer, init_std: float):
    from transformers import Lfm2Config, LlamaConfig, Qwen3Config

    shared = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "initializer_range": init_std,
        "tie_word_embeddings": True,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if arch == "llama3":
        return LlamaConfig(num_hidden_layers=2, **shared)
    if arch == "qwen3":
        return Qwen3Config(num_hidden_layers=2, head_dim=16, **shared)
    # LFM2's hybrid stack: short convolutions between attention layers, as in LiquidAI/LFM2-350M
    layer_types = ["conv", "full_attention", "conv", "full_attention"]
    return Lfm2Config(num_hidden_layers=len(layer_types), layer_types=layer_types, block_auto_adjust_ff_dim=False, **shared)


def build_standin(arch: str, out: Path, seed: int = 0, init_std: float = 0.02, environment=None) -> Path:
    """Write a stand-in of `arch` to `out`, its tokenizer learnt from `environment`'s texts (the project's by default);
    a larger `init_std` makes every input move the output (for exactness tests)."""
    import torch
    from huggingface_hub import ModelCardData
    from transformers import AutoModelForCausalLM
    from trl import chat_template_utils

    from sftboot.envs import project_environment
    from sftboot.training.student import TokenSpec, build_tokenizer

    if arch not in TOKENS:
        raise UserError(f"standin: unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    tokens = TokenSpec(**TOKENS[arch] | {"template": getattr(chat_template_utils, TOKENS[arch]["template"])})
    environment = environment or project_environment()
    tokenizer = build_tokenizer(environment, 1024, seed, tokens)  # as the builtin: an answer is ~10 tokens
    config = _config(arch, len(tokenizer), tokenizer, init_std)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    card = ModelCardData(library_name="transformers", **LICENSES[arch]).to_yaml()
    (out / "README.md").write_text(f"---\n{card}\n---\n\n# A {arch} stand-in: the architecture and chat template at toy size, random weights\n")
    return out
