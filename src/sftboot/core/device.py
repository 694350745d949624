"""Where models run and in which precision: one `compute` setting for every stage and the CLI.

`auto` picks CUDA with bf16 where the GPU has it, else the CPU with fp32; models are saved in the
dtype they were trained in. Under `accelerate launch` each process takes its own GPU from it.
`portable` pins the arithmetic, so the same params give the same bytes on any x86-64 CPU and
thread count (docs/design.md, "Portable arithmetic").
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from sftboot.core.errors import UserError


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    processes: int = 1  # data-parallel training processes sharing each batch

    def trainer_args(self) -> dict:
        """TrainingArguments that keep a trainer on this device and precision."""
        return {"use_cpu": self.device.type == "cpu", "bf16": self.dtype == torch.bfloat16, "fp16": self.dtype == torch.float16}


CPU = Placement(torch.device("cpu"), torch.float32)  # what `auto` resolves to without a GPU


# ATen cuts a parallel loop into one chunk per thread, and some loops sum in that order (an embedding's
# backward over more than 3,000 tokens): a fixed count keeps the order whatever the machine has.
PORTABLE_THREADS = 2


def portable_env() -> dict[str, str]:
    """The settings that give one summation order on every CPU, all read lazily by the libraries, at the first
    operation that needs them (so setting them before any tensor work is enough):

    ATen's AVX2 kernels (the same machine code on every x86-64 CPU since 2015) instead of the AVX-512 or
    AMX ones torch picks where it can, or its baseline kernels where AVX2 is missing or the CPU is not
    x86; oneMKL's vendor-neutral branch instead of the code path it picks per CPU vendor and model; a
    fixed cuBLAS workspace, which torch's deterministic algorithms need on CUDA; Inductor's deterministic
    mode, should anything compile.
    """
    return {
        "ATEN_CPU_CAPABILITY": "avx2" if _has_avx2() else "default",
        "MKL_CBWR": "COMPATIBLE",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "TORCHINDUCTOR_DETERMINISTIC": "1",
    }


def _has_avx2() -> bool:
    """AVX2 with FMA, as ATen's AVX2 kernels need; Linux lists it, another x86-64 system is taken to have it."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return True
    flags = set(next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "").split())
    return {"avx2", "fma"} <= flags


def use_portable_arithmetic() -> None:
    """Pin kernels and threads and turn on deterministic algorithms, for this process and the processes it launches."""
    settings = portable_env()
    os.environ.update(settings)
    chosen = torch.backends.cpu.get_cpu_capability()
    if chosen != settings["ATEN_CPU_CAPABILITY"].upper():
        raise UserError(
            f"compute.portable: torch already runs its {chosen} kernels in this process, so its arithmetic cannot be pinned now; "
            "set compute.portable: false here, or start a new process"
        )
    torch.set_num_threads(PORTABLE_THREADS)
    _use_deterministic_algorithms()
    torch.utils.deterministic.fill_uninitialized_memory = False  # NaN-filling every new tensor costs a fifth of a CPU step and changes no result


def _use_deterministic_algorithms() -> None:
    """`torch.use_deterministic_algorithms(True)` without its import of the compiler's config (a second per process):
    Inductor reads TORCHINDUCTOR_DETERMINISTIC when it is first imported, and is told directly if it already is."""
    torch._C._set_deterministic_algorithms(True)
    if "torch._inductor.config" in sys.modules:
        sys.modules["torch._inductor.config"].deterministic = True


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
