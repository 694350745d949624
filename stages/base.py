"""Stage `base`: the starting student, saved to models/base.

`student.model: builtin:tiny` (default) builds a small Llama-style model and a task tokenizer from
the config in params, offline; any other value is a hub id (needs network) or a local folder.
With `student.pretrain.steps` > 0 the model is first trained on the environment's own texts
(random players' games, no answer format: see sftboot.training.pretrain), a stand-in for the pretraining a
hub model already has. Every later stage loads models/base through `from_pretrained`.

    dvc repro base
"""

import time
from pathlib import Path

from sftboot.core.config import load_params
from sftboot.core.device import placement
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import write_json, write_timing
from sftboot.core.workspace import WORK_DIR, replace_dir
from sftboot.envs import make_environment
from sftboot.training.card import origin, write_card
from sftboot.training.pretrain import pretrain
from sftboot.training.student import load_student, materialize_base
from sftboot.training.trainlog import log_summary

MODEL_OUT = Path("models/base")
METRICS_OUT = Path("metrics/base.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    started = time.perf_counter()
    settings = params.student.pretrain
    place = placement(**params.compute.model_dump())
    environment = make_environment(params.env)
    with replace_dir(MODEL_OUT) as folder:
        summary = materialize_base(environment, params.student.model, params.student.builtin, params.seed, folder, place.dtype, params.student.revision)
        if settings.steps:
            model, tokenizer = load_student(folder, place.dtype)
            trained, history = pretrain(model, tokenizer, environment, settings, params.seed, WORK_DIR / "pretrain", [], place)
            trained.save_pretrained(folder)
            summary |= {f"pretrain_{name}": value for name, value in log_summary(history, "loss").items()}
        write_card(folder, "base", params, {"parameters": f"{summary['parameters']:,}"}, origin(params.student.model, params.student.revision))
    write_json(METRICS_OUT, summary)
    write_timing("base", started)
    print(f"base: {summary['model']} ({summary['parameters']:,} parameters) -> {MODEL_OUT}")


if __name__ == "__main__":
    main()
