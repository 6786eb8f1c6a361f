"""Citus against plain PostgreSQL on the same machine: provisioning and a load, as ratios.

    TENANCY_TEST_CITUS_URL=postgresql://postgres@127.0.0.1:9700/tenancy python -m bench.citus

Plain PostgreSQL runs in a fresh database of its own on ``TENANCY_BENCH_DATABASE_URL``
(default the local server); Citus in the coordinator's database that
``TENANCY_TEST_CITUS_URL`` names, under tenant ids unique to the run, dropped at the
end. Each case runs ``--tenants`` times on each side, interleaved, and the medians are
compared: a ratio above 1 means Citus is slower. Without the Citus URL it says why and
exits 0 (``make bench`` runs it, as CI does, where no cluster is set up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bench.database import bench_database, bench_url
from tenancy_fixtures import FixtureManager, Settings, generate_fixture_set, spotify

CITUS_ENV = "TENANCY_TEST_CITUS_URL"
console = Console()


async def _one_side(
    url: str, distributed: str, source: Path, tenants: int
) -> dict[str, list[float]]:
    """Seconds per new tenant, and per load of ``source`` into a new tenant."""
    settings = Settings(database_url=url, actor="bench", distributed=distributed)  # type: ignore[arg-type]
    run = f"cb{uuid.uuid4().hex[:6]}_"
    times: dict[str, list[float]] = {"create": [], "load": []}
    async with FixtureManager(settings) as manager:
        await manager.create_tenant(f"{run}warm")  # first-use costs out of the medians
        try:
            for i in range(tenants):
                started = time.perf_counter()
                await manager.create_tenant(f"{run}{i:03d}")
                times["create"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await manager.load_fixtures(f"{run}{i:03d}", source=source)
                times["load"].append(time.perf_counter() - started)
        finally:
            for tenant in await manager.list_tenants(prefix=run):
                await manager.drop_tenant(tenant.tenant_id)
    return times


async def _bench(citus_url: str, tenants: int, scale: int) -> None:
    spotify.register()
    with tempfile.TemporaryDirectory() as scratch:
        generated = generate_fixture_set(Path(scratch) / "set", scale=scale)
        async with bench_database(bench_url()) as db:
            plain = await _one_side(db.dsn, "off", generated.directory, tenants)
            citus = await _one_side(citus_url, "citus", generated.directory, tenants)
    table = Table(
        title=f"Citus vs plain PostgreSQL: medians of {tenants} tenants, "
        f"{generated.total_rows:,} rows per load"
    )
    for column in ("case", "plain PostgreSQL", "Citus (2 workers)", "Citus / plain"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case, label in (("create", "create a tenant"), ("load", "load a set into it")):
        ours, theirs = statistics.median(plain[case]), statistics.median(citus[case])
        table.add_row(
            label, f"{ours * 1000:.0f} ms", f"{theirs * 1000:.0f} ms", f"{theirs / ours:.2f}"
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=5, help="Tenants per side (default 5).")
    parser.add_argument("--scale", type=int, default=1, help="Size of the generated set.")
    args = parser.parse_args()
    citus_url = os.environ.get(CITUS_ENV)
    if not citus_url:
        console.print(f"bench.citus skipped: {CITUS_ENV} is not set (no Citus cluster to compare)")
        return
    url = make_url(citus_url).set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_bench(url, args.tenants, args.scale))


if __name__ == "__main__":
    main()
