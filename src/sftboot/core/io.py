"""Atomic file output: a stage's outputs appear whole or not at all, so DVC never caches half a file."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it into place in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_json(path: Path | str, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: Path | str, records: list[dict]) -> None:
    write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


TIMINGS_DIR = Path("metrics/timings")


def write_timing(stage: str, started: float, **figures: float) -> None:
    """A stage's wall time (and throughputs) apart from its metrics, so `dvc metrics diff` shows no clock noise."""
    write_json(TIMINGS_DIR / f"{stage}.json", {"seconds": round(time.perf_counter() - started, 1)} | figures)


def write_parquet(path: Path | str, frame: pl.DataFrame) -> None:
    with atomic_path(path) as temporary:
        frame.write_parquet(temporary)
