"""Stage `sft`: the warm-up that teaches the student the answer format and legal moves.

TRL SFTTrainer on data/sft/train.jsonl with the loss on assistant tokens only (the chat
template's `{% generation %}` marks them; `sft.assistant_only_loss: false` trains on every
token), optional LoRA (PEFT) merged into a standalone models/sft. The loss curve is logged
with dvclive under metrics/sft/.

    dvc repro sft
"""

import time
from contextlib import nullcontext
from pathlib import Path

from dvclive import Live
from transformers.integrations import DVCLiveCallback

from sftboot.core.budget import longest_answer, record_longest_answer
from sftboot.core.config import load_params
from sftboot.core.device import is_main_process, launch_processes, leave_processes, placement
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import write_json, write_timing
from sftboot.core.workspace import WORK_DIR, replace_dir
from sftboot.training.card import inherited, write_card
from sftboot.training.sft import count_truncated, read_records, train_sft
from sftboot.training.student import load_student
from sftboot.training.trainlog import log_summary

MODEL_IN = Path("models/base")
DATA_IN = Path("data/sft/train.jsonl")
MODEL_OUT = Path("models/sft")
LIVE_DIR = Path("metrics/sft")
SUMMARY_OUT = Path("metrics/sft.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    started = time.perf_counter()
    place = placement(**params.compute.model_dump())
    launch_processes(__file__, place)
    records = read_records(DATA_IN)
    model, tokenizer = load_student(MODEL_IN, place.dtype)
    lengths = count_truncated(records, tokenizer, params.sft.max_length)
    if lengths["truncated"] and is_main_process():
        print(f"sft: {lengths['truncated']} of {lengths['examples']} examples exceed sft.max_length={params.sft.max_length} and are truncated")

    with Live(dir=str(LIVE_DIR), dvcyaml=None, save_dvc_exp=False, report=None) if is_main_process() else nullcontext() as live:
        callbacks = [DVCLiveCallback(live=live)] if live else []
        trained, history = train_sft(model, tokenizer, records, params.sft, params.seed, WORK_DIR / "sft", callbacks, place)
    leave_processes()
    if not is_main_process():
        return
    longest = longest_answer(records, tokenizer)
    summary = log_summary(history, "loss")
    with replace_dir(MODEL_OUT) as folder:
        trained.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        record_longest_answer(folder, longest)
        write_card(
            folder,
            "sft",
            params,
            {
                "SFT examples (kept games)": len(records),
                "SFT steps": summary["steps"],
                "SFT loss, first → last": f"{summary['first_loss']} → {summary['final_loss']}",
            },
            inherited(MODEL_IN),
        )
    write_json(SUMMARY_OUT, lengths | {"longest_answer_tokens": longest, "processes": place.processes} | summary)
    write_timing("sft", started, steps_per_s=round(summary["steps"] / (time.perf_counter() - started), 2))
    print(f"sft: loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f} over {summary['steps']} steps -> {MODEL_OUT}")


if __name__ == "__main__":
    main()
