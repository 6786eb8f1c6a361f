"""Staging alone of the streaming-history export of goal d (issue 15), no database.

``python -m bench.history_staging --scale full`` reads the export of
:mod:`bench.history` into staged JSON Lines as a load does before it writes
(``SourceLoader.stage``), in the loading process (``TENANCY_PARSE_WORKERS=0``) and with
the files read ahead by two parse workers, in turn, and prints the median seconds of
each. The workers are started before the first timed run, as a process that has loaded
before has them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console

from bench.dataset import SCALES
from bench.history import HISTORY_USER, history_at_scale
from tenancy_fixtures import Settings, spotify
from tenancy_fixtures.loading.parse_workers import POOL
from tenancy_fixtures.loading.sources import SourceLoader, find_source_files, source_file
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = ["main"]

FORMAT = "spotify-history"


def _stage_seconds(names: list[str], directory: Path, workers: int) -> float:
    """Seconds to stage the export files ``names`` once with ``workers`` parse workers."""
    options = {"user_id": HISTORY_USER}
    files = [source_file(directory, name, format=FORMAT, options=options) for name in names]
    loader = SourceLoader(files, metadata=spotify_metadata())
    started = time.perf_counter()
    loader.stage(Settings(parse_workers=workers))
    seconds = time.perf_counter() - started
    loader.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history_staging", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    console = Console()
    history = history_at_scale(args.scale, log=console.print)
    spotify.register()
    directory, names = find_source_files(history.export)
    POOL.prestart(2)
    medians = {}
    for workers in (0, 2):
        runs = [_stage_seconds(names, directory, workers) for _ in range(args.repeats)]
        medians[workers] = statistics.median(runs)
        console.print(f"  {workers} parse workers: {', '.join(f'{s:.2f}s' for s in runs)}")
    console.print(
        f"staging {history.entries:,} plays, medians of {args.repeats}: in the loading "
        f"process {medians[0]:.2f}s, read ahead by two workers {medians[2]:.2f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
