"""Stage `base`: the starting student, saved to models/base.

`student.model: builtin:tiny` (default) builds a small Llama-style model and a task tokenizer from
the config in params, offline; any other value is a hub id (needs network) or a local folder.
Every later stage loads models/base through `from_pretrained`.

    dvc repro base
"""

from pathlib import Path

from sftboot.config import load_params
from sftboot.errors import exits_cleanly
from sftboot.io import write_json
from sftboot.student import materialize_base
from sftboot.workspace import replace_dir

MODEL_OUT = Path("models/base")
METRICS_OUT = Path("metrics/base.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    with replace_dir(MODEL_OUT) as folder:
        summary = materialize_base(params.student.model, params.student.builtin, params.seed, folder)
    write_json(METRICS_OUT, summary)
    print(f"base: {summary['model']} ({summary['parameters']:,} parameters) -> {MODEL_OUT}")


if __name__ == "__main__":
    main()
