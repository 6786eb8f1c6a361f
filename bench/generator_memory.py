"""The generator's peak RSS and wall time against ``--scale`` (issue 15: flat memory).

Runs ``tenancy-fixtures generate DIR --scale N`` in a fresh process per scale, into a
scratch directory removed afterwards, and reads the process's peak RSS and wall time
the way :func:`bench.ours.run_measured` does for the loader. Memory should not grow
with the scale while the rows (and the time) grow linearly; ``rss_ratio`` and
``rows_ratio`` put each scale beside the smallest.

    python -m bench.generator_memory                  # the small scales
    python -m bench.generator_memory --scale full     # the full scales (minutes)
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from bench.dataset import MiB
from bench.ours import cli_command, run_measured

__all__ = ["GENERATOR_SCALES", "generator_memory"]

#: Per bench scale, the generator scales run: a factor of 4 apart, the larger one the
#: scale of that bench scale's dataset (:data:`bench.dataset.SCALES`).
GENERATOR_SCALES: dict[str, list[int]] = {"small": [5, 20], "full": [500, 2000]}
_ROWS = re.compile(r"wrote ([\d,]+) rows")


def generator_memory(scales: list[int], *, seed: int = 42) -> list[dict[str, float | int]]:
    """One record per scale (in the order given): ``scale``, ``rows``, ``seconds``,
    ``peak_rss_bytes``, ``bytes_written``, and ``rss_ratio``/``rows_ratio`` against the
    smallest scale."""
    records: list[dict[str, float | int]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as scratch:
            target = Path(scratch) / "set"
            command = [cli_command(), "generate", str(target), "--scale", str(scale)]
            run = run_measured([*command, "--seed", str(seed)], env)
            if run.returncode != 0:
                error = run.stderr.strip()
                raise RuntimeError(f"generate --scale {scale} exited {run.returncode}: {error}")
            found = _ROWS.search(run.stdout)
            if found is None:
                raise RuntimeError(f"generate --scale {scale} printed no row count: {run.stdout}")
            written = sum(p.stat().st_size for p in target.iterdir())
        records.append(
            {
                "scale": scale,
                "rows": int(found.group(1).replace(",", "")),
                "seconds": run.seconds,
                "peak_rss_bytes": run.peak_rss_bytes,
                "bytes_written": written,
            }
        )
    smallest = min(records, key=lambda r: r["scale"], default=None)
    for record in records:
        assert smallest is not None  # there is a record
        record["rss_ratio"] = record["peak_rss_bytes"] / smallest["peak_rss_bytes"]
        record["rows_ratio"] = record["rows"] / smallest["rows"]
    return records


def _table(records: list[dict[str, float | int]]) -> str:
    header = f"{'scale':>7} {'rows':>13} {'written':>10} {'wall':>9} {'peak RSS':>10} "
    lines = [header + f"{'RSS x':>7} {'rows x':>8}"]
    for r in records:
        lines.append(
            f"{r['scale']:>7,} {r['rows']:>13,} {r['bytes_written'] / MiB:>6,.0f} MiB "
            f"{r['seconds']:>8.1f}s {r['peak_rss_bytes'] / MiB:>6.1f} MiB "
            f"{r['rss_ratio']:>7.2f} {r['rows_ratio']:>8.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(GENERATOR_SCALES), default="small")
    parser.add_argument("--scales", type=int, nargs="+", help="these generator scales instead")
    args = parser.parse_args()
    print(_table(generator_memory(args.scales or GENERATOR_SCALES[args.scale])))
