"""Where models run and in which precision: one `compute` setting for every stage and the CLI.

`auto` picks CUDA with bf16 where the GPU has it, else the CPU with fp32; models are saved in the
dtype they were trained in. Under `accelerate launch` each process takes its own GPU from it.
`portable` pins the arithmetic, so the same params give the same bytes on any x86-64 CPU and
thread count (docs/design.md, "Portable arithmetic").
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass

import torch

from sftboot.errors import UserError


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    processes: int = 1  # data-parallel training processes sharing each batch

    def trainer_args(self) -> dict:
        """TrainingArguments that keep a trainer on this device and precision."""
        return {"use_cpu": self.device.type == "cpu", "bf16": self.dtype == torch.bfloat16, "fp16": self.dtype == torch.float16}


CPU = Placement(torch.device("cpu"), torch.float32)  # what `auto` resolves to without a GPU

# One summation order everywhere: ATen's baseline kernels instead of the AVX2/AVX-512/AMX ones torch
# picks per CPU, oneMKL's vendor-neutral branch instead of the one it picks per CPU model, and a
# fixed cuBLAS workspace (needed by torch's deterministic algorithms on CUDA). All are read lazily,
# at the first operation that needs them, so setting them before any tensor work is enough.
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def use_portable_arithmetic() -> None:
    """Pin kernels and turn on deterministic algorithms for this process and the processes it launches."""
    os.environ.update(PORTABLE_ENV)
    chosen = torch.backends.cpu.get_cpu_capability()
    if chosen != "DEFAULT":
        raise UserError(
            f"compute.portable: torch already runs its {chosen} kernels in this process, so its arithmetic cannot be pinned now; "
            "set compute.portable: false here, or start a new process"
        )
    torch.use_deterministic_algorithms(True)


def placement(device: str = "auto", dtype: str = "auto", processes: int = 1, portable: bool = False) -> Placement:
    """Resolve `auto`s, and refuse a device torch cannot see, naming the setting to change.

    With `portable`, pins the process's arithmetic first: call it before any tensor work.
    """
    if portable:
        use_portable_arithmetic()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("compute.device: cuda, but torch sees no CUDA GPU here; set compute.device: auto or cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("compute.device: mps, but torch sees no Apple GPU here; set compute.device: auto or cpu")
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    return Placement(torch.device(device), getattr(torch, dtype), processes)


def launch_processes(script: str, place: Placement) -> None:
    """Re-run `script` under `accelerate launch` with `place.processes` processes, unless already launched (then WORLD_SIZE is set).

    On GPUs each process takes one; on the CPU they share it through gloo, which is how this is tested.
    """
    if place.processes == 1 or "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as probe:  # a free port for the processes to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = shutil.which("accelerate") or "accelerate"
    command = [launcher, "launch", "--multi_gpu", "--num_processes", str(place.processes), "--num_machines", "1", "--main_process_port", str(port)]
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(place.dtype, "no")
    command += ["--mixed_precision", precision, "--dynamo_backend", "no", script, *sys.argv[1:]]
    sys.stdout.flush()
    os.execvp(command[0], command)


def is_main_process() -> bool:
    """Only the first of several processes writes models and metrics."""
    return int(os.environ.get("RANK", "0")) == 0


def leave_processes() -> None:
    """All processes of a launched run leave together once training is done; the first then writes alone.

    A process that exits while its process group is alive can abort (gloo's threads), which fails the run.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
