"""Benchmark: which arithmetic this machine does, piece by piece, and what portable mode costs.

Prints a short sha256 of each piece of a training step of the builtin student's shape (the same
20-step AdamW run as ../shared/probes/arithmetic.py): the initial weights (ATen's random fills),
one matrix product of exact inputs (oneMKL's SGEMM alone), elementwise functions of exact inputs
(ATen's kernels), the first logits and gradients, and the weights after 20 steps. On two machines
the first line that differs names the library that sums differently. Portable arithmetic
(compute.portable) is on unless --native.

    python bench/arithmetic.py [--native] [--threads N] [--steps 20]

The hashes measured so far, per machine: docs/results.md (portable arithmetic).
"""

import argparse
import hashlib
import os
import time

import torch
import transformers as T

from sftboot.core.device import use_portable_arithmetic


def digest(*tensors: torch.Tensor) -> str:
    hashed = hashlib.sha256()
    for tensor in tensors:
        hashed.update(tensor.detach().contiguous().numpy().tobytes())
    return hashed.hexdigest()[:16]


def exact_inputs(rows: int, columns: int, salt: int) -> torch.Tensor:
    """Values every machine builds alike (integers, one correctly rounded division), inexact enough that summation order shows."""
    index = torch.arange(rows * columns, dtype=torch.int64)
    return (((index * 7919 + salt) % 1001) - 500).to(torch.float32).reshape(rows, columns) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--native", action="store_true", help="torch's own kernels for this CPU instead of portable arithmetic")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--steps", type=int, default=20, help="AdamW steps (the probe's 20 give the hashes recorded in docs/results.md)")
    args = parser.parse_args()
    if not args.native:
        use_portable_arithmetic()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    torch.manual_seed(0)
    config = T.LlamaConfig(
        vocab_size=1024, hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048
    )
    model = T.LlamaForCausalLM(config)
    pieces = {"init": digest(*model.parameters())}
    left, right = exact_inputs(800, 128, 1), exact_inputs(128, 128, 2)
    pieces["sgemm"] = digest(left @ right)
    pieces["elementwise"] = digest(left.exp(), left.abs().add(1).log(), left.abs().add(1).rsqrt(), torch.nn.functional.silu(left), left.softmax(-1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    for step in range(args.steps):
        tokens = torch.randint(0, 1024, (4, 200), generator=generator)
        output = model(input_ids=tokens, labels=tokens)
        output.loss.backward()
        if step == 0:
            pieces["logits"] = digest(output.logits)
            pieces["gradients"] = digest(*(parameter.grad for parameter in model.parameters()))
        optimizer.step()
        optimizer.zero_grad()
    pieces[f"weights after {args.steps} steps"] = digest(*model.parameters())
    mode = "native" if args.native else "portable"
    print(f"{mode} arithmetic, {torch.get_num_threads()} threads, kernels {torch.backends.cpu.get_cpu_capability()}, MKL_CBWR={os.environ.get('MKL_CBWR', '')}")
    for piece, hashed in pieces.items():
        print(f"{piece:>24}: {hashed}")
    print(f"{'seconds':>24}: {time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
