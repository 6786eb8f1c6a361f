"""Goal d of issue 15 alone: the streaming-history export against its table files.

``python -m bench.history_only --scale full`` runs only the case of
:mod:`bench.history_cases` (the same export, repeats and row check as ``make bench``)
in a fresh database, for work on that path between full runs; the README's table comes
from a full ``make bench SCALE=full`` run.
"""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console

from bench.cases import Failures
from bench.database import bench_database, bench_url
from bench.dataset import SCALES
from bench.history import history_at_scale
from bench.history_cases import run_history

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history_only", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--database-url", default=bench_url())
    args = parser.parse_args(argv)
    console = Console()
    config = SCALES[args.scale]
    history = history_at_scale(args.scale, log=console.print)
    failures = Failures(console)

    async def measure() -> tuple[float, float, float]:
        async with bench_database(args.database_url) as db:
            return await run_history(db, history, config.repeats, failures)

    export, tables, tenant = asyncio.run(measure())
    console.print(
        f"medians of {config.repeats}: export {export:.2f}s, the same tenant as table files "
        f"{tenant:.2f}s, the staged rows alone {tables:.2f}s; export speed / the same "
        f"tenant's {tenant / export:.2f}x (goal d), / the staged rows' {tables / export:.2f}x"
    )
    return 1 if failures.items else 0


if __name__ == "__main__":
    raise SystemExit(main())
