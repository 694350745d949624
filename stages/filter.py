"""Stage `filter`: keep the teacher games worth imitating.

A game is kept when its outcome is in `filter.keep` (default: win, draw), every answer is
well-formed and no move was invalid; with `filter.deduplicate`, each conversation once.
Out: data/sft/filtered.parquet, metrics/filter.json.

    dvc repro filter
"""

from pathlib import Path

from sftboot.core.config import load_params
from sftboot.core.errors import exits_cleanly
from sftboot.core.io import write_json, write_parquet
from sftboot.data.dataset import filter_games, read_games

GAMES_IN = Path("data/rollouts/teacher.parquet")
KEPT_OUT = Path("data/sft/filtered.parquet")
METRICS_OUT = Path("metrics/filter.json")


@exits_cleanly
def main() -> None:
    params = load_params()
    kept_games, summary = filter_games(read_games(GAMES_IN), params.filter.keep, params.filter.deduplicate)
    write_parquet(KEPT_OUT, kept_games)
    write_json(METRICS_OUT, summary)
    print(f"filter: kept {summary['kept']} of {summary['games']} games; dropped {summary['dropped_by_reason']}")


if __name__ == "__main__":
    main()
