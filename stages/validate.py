"""Stage `validate`: a great-expectations suite gates the filtered games before they become SFT data.

On success: data/sft/train.jsonl (TRL conversational `messages` records) and metrics/validate.json.
On failure: a list of the failing expectations with example game ids, a non-zero exit, and no
SFT data, so nothing downstream trains on it.

    dvc repro validate
"""

from pathlib import Path

from sftboot.core.config import load_params
from sftboot.core.errors import UserError, exits_cleanly
from sftboot.core.io import write_json, write_jsonl
from sftboot.data.dataset import read_games, sft_records
from sftboot.data.validation import describe_failures, validate_games
from sftboot.envs import make_environment

GAMES_IN = Path("data/sft/filtered.parquet")
TRAIN_OUT = Path("data/sft/train.jsonl")
REPORT_OUT = Path("metrics/validate.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    games = read_games(GAMES_IN)
    report = validate_games(games, params.filter.keep, params.filter.deduplicate, params.validate_.min_examples, make_environment(params.env))
    if not report["success"]:
        raise UserError(describe_failures(report))
    write_jsonl(TRAIN_OUT, sft_records(games))
    write_json(REPORT_OUT, report)
    print(f"validate: {report['games']} games passed {len(report['expectations'])} expectations -> {TRAIN_OUT}")


if __name__ == "__main__":
    main()
