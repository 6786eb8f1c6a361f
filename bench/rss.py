"""Peak RSS of our loader on a big JSON Lines file of listening events.

:func:`write_big_set` streams listening events, valid against the users and tracks
of a generated set and unique on ``(user_id, played_at)`` (every user keeps its own
clock that only moves forward), to ``listening_events.jsonl`` until the file reaches
the wanted size. The set's other tables are linked (or copied) next to it and a
manifest names the big file, so the directory is a complete fixture set. Sets are
cached under ``bench/.data/<scale>-<seed>/rss-<MiB>mib/``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.dataset import Dataset, MiB, iter_source_records

__all__ = ["BigSet", "write_big_set"]

_MARKER = "complete.json"
_PLATFORMS = ("ios", "android", "desktop", "web_player", "cast")
_STARTS = ("clickrow", "playbtn", "appload", "trackdone", "fwdbtn", "backbtn")
_ENDS = ("trackdone", "fwdbtn", "backbtn", "endplay", "logout")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BigSet:
    """A fixture set whose listening_events file is a big JSON Lines file."""

    directory: Path
    event_rows: int
    event_bytes: int
    total_rows: int


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _users(dataset: Dataset) -> tuple[list[str], array[int]]:
    ids: list[str] = []
    clocks: array[int] = array("q")
    with (dataset.directory / dataset.files["users"]).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            ids.append(row["user_id"])
            created = datetime.fromisoformat(row["created_at"])
            clocks.append(int((created - _EPOCH).total_seconds()))
    return ids, clocks


def _tracks(dataset: Dataset) -> tuple[list[str], array[int]]:
    ids: list[str] = []
    durations: array[int] = array("q")
    for record in iter_source_records(dataset.directory / dataset.files["tracks"]):
        ids.append(record["track_id"])
        durations.append(int(record["duration_ms"]))
    return ids, durations


def _write_events(path: Path, dataset: Dataset, target_bytes: int, seed: int) -> int:
    rng = random.Random(seed)
    users, clocks = _users(dataset)
    tracks, durations = _tracks(dataset)
    written = rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < target_bytes:
            user = rows % len(users)
            track = rng.randrange(len(tracks))
            duration = durations[track]
            skipped = rng.random() < 0.22
            ms_played = rng.randint(0, min(30_000, duration)) if skipped else duration
            clocks[user] += ms_played // 1000 + rng.randint(1, 6 * 3600)
            played_at = _EPOCH + timedelta(seconds=clocks[user])
            line = (
                json.dumps(
                    {
                        "user_id": users[user],
                        "played_at": played_at.isoformat(),
                        "track_id": tracks[track],
                        "ms_played": ms_played,
                        "context_uri": f"spotify:track:{tracks[track]}"
                        if rng.random() < 0.8
                        else None,
                        "platform": rng.choice(_PLATFORMS),
                        "reason_start": rng.choice(_STARTS),
                        "reason_end": rng.choice(_ENDS[1:3]) if skipped else rng.choice(_ENDS),
                        "shuffle": rng.random() < 0.4,
                        "skipped": skipped,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            out.write(line)
            written += len(line.encode())
            rows += 1
    return rows


def write_big_set(dataset: Dataset, target_bytes: int, *, log: Any = print) -> BigSet:
    """A fixture set like ``dataset`` whose listening events fill ``target_bytes``."""
    directory = dataset.root / f"rss-{target_bytes // MiB}mib"
    marker = directory / _MARKER
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("target_bytes") == target_bytes and info.get("rows") == dataset.rows:
            return BigSet(directory, info["event_rows"], info["event_bytes"], info["total_rows"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    log(f"writing a {target_bytes / MiB:,.0f} MiB listening_events.jsonl into {directory} ...")
    started = time.perf_counter()
    files = []
    for table, relative in dataset.files.items():
        if table == "listening_events":
            continue
        _link_or_copy(dataset.directory / relative, directory / relative)
        files.append({"table": table, "path": relative})
    big = directory / "listening_events.jsonl"
    event_rows = _write_events(big, dataset, target_bytes, dataset.seed)
    files.append({"table": "listening_events", "path": big.name})
    (directory / "fixtures.json").write_text(
        json.dumps({"name": f"bench-rss-{target_bytes // MiB}mib", "version": 1, "files": files}),
        encoding="utf-8",
    )
    total = sum(n for t, n in dataset.rows.items() if t != "listening_events") + event_rows
    info = {
        "target_bytes": target_bytes,
        "rows": dataset.rows,
        "event_rows": event_rows,
        "event_bytes": big.stat().st_size,
        "total_rows": total,
    }
    marker.write_text(json.dumps(info), encoding="utf-8")
    log(f"  {event_rows:,} events in {time.perf_counter() - started:.1f}s")
    return BigSet(directory, event_rows, info["event_bytes"], total)
