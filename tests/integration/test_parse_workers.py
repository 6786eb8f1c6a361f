"""Big JSON Lines files parsed by worker processes, on both backends: the same rows and
checksums as an in-process load, the same errors at the same lines, nothing left behind
when a record or a worker fails, and workers that can be lent again afterwards."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import gzip
import importlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, TypeDecorator

from tenancy_fixtures import (
    FixtureFormatError,
    FixtureManager,
    RecordError,
    Settings,
    StorageError,
)
from tenancy_fixtures.loading import data_loader, parse_workers
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.parse_workers import POOL, ParserPool, call_in_workers, portable
from tenancy_fixtures.loading.value_formats import FORMATS, ValueFormat
from tenancy_fixtures.spotify.generator import generate_fixture_set
from tenancy_fixtures.store import control_plane

BIG = "listening_events"


@pytest.fixture(scope="module")
def generated_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated set whose JSON Lines files span many blocks."""
    directory = tmp_path_factory.mktemp("parse-workers") / "set"
    generate_fixture_set(directory, scale=3, seed=7)
    return directory


@pytest.fixture
def workers_settings(settings: Settings) -> Settings:
    """This backend's settings with two parse workers and small batches (many blocks)."""
    return settings.model_copy(update={"parse_workers": 2, "batch_size": 50})


@pytest.fixture
def every_jsonl_file_in_workers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Send every JSON Lines file, however small, to the workers; names the tables sent."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    sent: list[str] = []
    real = parse_workers.parse_in_workers

    def spy(workers: Any, files: Any, table: Any, **kwargs: Any) -> Iterator[Any]:
        sent.append(table.name)
        return real(workers, files, table, **kwargs)

    monkeypatch.setattr(data_loader, "parse_in_workers", spy)  # where DataLoader looks
    return sent


def _file_of(fixture_set: Path, table: str) -> Path:
    manifest = json.loads((fixture_set / "fixtures.json").read_text(encoding="utf-8"))
    return fixture_set / str(next(f["path"] for f in manifest["files"] if f["table"] == table))


def _jsonl_lines(path: Path) -> list[str]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def _write_jsonl_lines(path: Path, lines: list[str]) -> None:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _with_events_changed(
    fixture_set: Path, tmp_path: Path, change: Callable[[list[str]], None]
) -> tuple[Path, Path]:
    """A copy of ``fixture_set`` whose listening events' lines ``change`` edited in place;
    returns the copy and its events file."""
    target = tmp_path / "copy"
    target.mkdir()
    for file in fixture_set.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    events = _file_of(target, BIG)
    lines = _jsonl_lines(events)
    change(lines)
    _write_jsonl_lines(events, lines)
    return target, events


async def _checksums(manager: FixtureManager, tenant: str) -> dict[str, tuple[int, str]]:
    async with manager.store.control(readonly=True) as conn:
        writes = await control_plane.table_checksums(conn, tenant)
    return {w.table: (w.rows, w.checksum) for w in writes}


async def _total_rows(manager: FixtureManager, tenant: str) -> int:
    async with manager.store.session(tenant, readonly=True) as session:
        tables = [t for t in session.metadata.sorted_tables if t.schema is not None]
        counts = await control_plane.count_rows(session.connection, tables)
    return sum(counts.values())


async def test_a_load_parsed_by_worker_processes_writes_the_rows_an_in_process_load_writes(
    settings: Settings,
    workers_settings: Settings,
    generated_set: Path,
    every_jsonl_file_in_workers: list[str],
) -> None:
    async with FixtureManager(settings.model_copy(update={"parse_workers": 0})) as manager:
        await manager.create_tenant("in_process")
        await manager.load_fixtures("in_process", source=generated_set)
        expected = await _checksums(manager, "in_process")
        assert [] == every_jsonl_file_in_workers
    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("in_workers")
        report = await manager.load_fixtures("in_workers", source=generated_set)

        assert BIG in every_jsonl_file_in_workers
        assert expected == await _checksums(manager, "in_workers")
        assert sum(rows for rows, _ in expected.values()) == report.rows
        assert (await manager.validate_tenant("in_workers")).ok
        for tenant in ("in_process", "in_workers"):
            await manager.drop_tenant(tenant)


async def test_a_record_refused_in_a_worker_names_its_file_and_line_and_nothing_loads(
    workers_settings: Settings,
    generated_set: Path,
    tmp_path: Path,
    every_jsonl_file_in_workers: list[str],
) -> None:
    bad_line = len(_jsonl_lines(_file_of(generated_set, BIG))) - 3  # in one of the last blocks

    def break_ms_played(lines: list[str]) -> None:
        record = json.loads(lines[bad_line - 1])
        record["ms_played"] = "not a number"
        lines[bad_line - 1] = json.dumps(record)

    broken, events = _with_events_changed(generated_set, tmp_path, break_ms_played)

    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("refused")
        with pytest.raises(RecordError) as caught:
            await manager.load_fixtures("refused", source=broken)

        assert BIG in every_jsonl_file_in_workers
        assert (events.name, bad_line, "ms_played") == (
            caught.value.path,
            caught.value.line,
            caught.value.column,
        )
        assert 0 == await _total_rows(manager, "refused")
        # The workers were drained, not lost: the next load uses them and succeeds.
        report = await manager.load_fixtures("refused", source=generated_set)
        assert report.rows > 0
        await manager.drop_tenant("refused")


async def test_a_malformed_line_in_a_worker_block_is_a_format_error_at_that_line(
    workers_settings: Settings,
    generated_set: Path,
    tmp_path: Path,
    every_jsonl_file_in_workers: list[str],
) -> None:
    def cut_line_100(lines: list[str]) -> None:
        lines[99] = '{"user_id": '

    broken, events = _with_events_changed(generated_set, tmp_path, cut_line_100)

    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("malformed")
        with pytest.raises(FixtureFormatError) as caught:
            await manager.load_fixtures("malformed", source=broken)

        assert (events.name, 100) == (caught.value.path, caught.value.line)
        assert 0 == await _total_rows(manager, "malformed")
        await manager.drop_tenant("malformed")


async def test_a_parse_worker_that_dies_fails_the_load_cleanly_and_is_replaced(
    workers_settings: Settings,
    generated_set: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_jsonl_file_in_workers: list[str],
) -> None:
    spy: Callable[..., Iterator[Any]] = getattr(data_loader, "parse_in_workers")  # noqa: B009
    killed: list[int] = []

    def kill_one_first(workers: Any, files: Any, table: Any, **kwargs: Any) -> Iterator[Any]:
        if not killed:
            workers[0].process.kill()
            workers[0].process.wait()
            killed.append(workers[0].process.pid)
        return spy(workers, files, table, **kwargs)

    monkeypatch.setattr(data_loader, "parse_in_workers", kill_one_first)
    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("orphaned")
        with pytest.raises(StorageError, match="parsing process ended unexpectedly"):
            await manager.load_fixtures("orphaned", source=generated_set)

        assert killed
        assert 0 == await _total_rows(manager, "orphaned")
        report = await manager.load_fixtures("orphaned", source=generated_set)
        assert report.rows > 0
        assert killed[0] not in {worker.process.pid for worker in POOL._idle}
        assert all(worker.alive() for worker in POOL._idle)
        await manager.drop_tenant("orphaned")


def test_idle_workers_that_died_are_not_lent() -> None:
    pool = ParserPool()
    try:
        pool.prestart(2)
        dead = pool.borrow(1)[0]
        dead.process.kill()
        dead.process.wait()
        pool.give_back([dead])

        lent = pool.borrow(2)

        assert 2 == len(lent)
        assert all(worker.alive() for worker in lent)
        assert dead.conn.closed  # not left for the garbage collector (ResourceWarning)
        pool.give_back(lent)
    finally:
        pool.close()


def test_a_pool_lends_no_more_workers_than_asked_for_at_once() -> None:
    pool = ParserPool()
    try:
        with pool.lend(2) as first, pool.lend(2) as second:
            assert (2, 0) == (len(first), len(second))
        assert 2 == pool.idle
    finally:
        pool.close()


def test_a_table_typed_in_the_callers_main_script_stays_in_process() -> None:
    class Shouted(TypeDecorator[str]):
        impl = String
        cache_ok = True

    Shouted.__module__ = "__main__"  # as if declared in the script that runs the load
    table = Table("t", MetaData(), Column("id", String, primary_key=True), Column("x", Shouted))

    assert not portable(table)
    assert portable(Table("u", MetaData(), Column("id", String, primary_key=True)))


async def test_a_load_parses_in_process_when_no_worker_can_be_started(
    workers_settings: Settings,
    generated_set: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_jsonl_file_in_workers: list[str],
) -> None:
    def no_interpreter(worker: Any) -> None:
        raise FileNotFoundError("no python here")

    pool = ParserPool()
    monkeypatch.setattr(parse_workers._Worker, "__init__", no_interpreter)
    monkeypatch.setattr(data_loader, "POOL", pool)
    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("no_workers")

        report = await manager.load_fixtures("no_workers", source=generated_set)

        assert [] == every_jsonl_file_in_workers
        written = await _checksums(manager, "no_workers")
        assert sum(rows for rows, _ in written.values()) == report.rows > 0
        await manager.drop_tenant("no_workers")


async def test_running_workers_take_a_smaller_table_only_if_it_keeps_them_light(
    workers_settings: Settings,
    backend: str,
    generated_set: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once workers run, smaller files join them; on PostgreSQL only those whose blocks
    take the compiled path (tracks), not product events (JSON, naive timestamps): their
    exact path would make every worker import SQLAlchemy for good. On SQLite workers
    rebuild every table anyway, so both join."""
    sizes = {
        table: parse_workers.jsonl_bytes([_fixture_file(generated_set, table)])
        for table in ("tracks", "product_events")
    }
    # Both below the size that starts workers, both above an eighth of it.
    threshold = 8 * min(sizes.values())
    assert max(sizes.values()) < threshold
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", threshold)
    sent: list[str] = []
    real = parse_workers.parse_in_workers

    def spy(workers: Any, files: Any, table: Any, **kwargs: Any) -> Iterator[Any]:
        sent.append(table.name)
        return real(workers, files, table, **kwargs)

    monkeypatch.setattr(data_loader, "parse_in_workers", spy)
    POOL.prestart(2)
    async with FixtureManager(workers_settings) as manager:
        await manager.create_tenant("joiners")

        await manager.load_fixtures("joiners", source=generated_set)

        joined = {"tracks", "product_events"} & set(sent)
        expected = {"tracks"} if backend == "postgresql" else {"tracks", "product_events"}
        assert expected == joined
        await manager.drop_tenant("joiners")


def _fixture_file(fixture_set: Path, table: str) -> FixtureFile:
    path = _file_of(fixture_set, table)
    return FixtureFile(table, path, path.name, "jsonl", path.name.endswith(".gz"))


def test_calls_run_by_workers_come_back_in_the_order_they_were_given() -> None:
    pool = ParserPool()
    try:
        with pool.lend(2) as workers:
            results = list(call_in_workers(workers, [(pow, (2, n)) for n in range(9)]))

        assert [2**n for n in range(9)] == results
    finally:
        pool.close()


def test_a_call_that_raises_is_raised_here_and_its_workers_can_be_lent_again() -> None:
    pool = ParserPool()
    try:
        calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (pow, (2, 1)),
            (int, ("not a number",)),
            (pow, (2, 3)),
            (pow, (2, 4)),
        ]
        with pool.lend(2) as workers:
            results = call_in_workers(workers, calls)
            assert 2 == next(results)
            with pytest.raises(ValueError, match="not a number"):
                next(results)
            assert not any(worker.broken for worker in workers)

        with pool.lend(2) as workers:
            assert [9] == list(call_in_workers(workers, [(pow, (3, 2))]))
        assert 2 == pool.idle
    finally:
        pool.close()


def test_calls_left_when_the_caller_stops_reading_are_drained() -> None:
    pool = ParserPool()
    try:
        with pool.lend(2) as workers:
            results = call_in_workers(workers, [(pow, (2, n)) for n in range(20)])
            assert 1 == next(results)
            results.close()
            assert not any(worker.broken for worker in workers)

            assert [4] == list(call_in_workers(workers, [(pow, (2, 2))]))
    finally:
        pool.close()


def test_a_worker_that_dies_during_a_call_is_not_lent_again() -> None:
    pool = ParserPool()
    try:
        with pool.lend(2) as workers:
            results = call_in_workers(workers, [(pow, (2, 1)), (os._exit, (3,)), (pow, (2, 2))])
            assert 2 == next(results)
            with pytest.raises(StorageError, match="ended unexpectedly"):
                list(results)
        # Both were stopped (the other may still have held a task); new ones start.
        assert 0 == pool.idle
        with pool.lend(2) as fresh:
            assert all(worker.alive() for worker in fresh)
            assert [1, 2] == list(call_in_workers(fresh, [(pow, (2, 0)), (pow, (2, 1))]))
    finally:
        pool.close()


def test_a_result_that_cannot_travel_back_is_an_error_and_the_worker_lives_on() -> None:
    pool = ParserPool()
    try:
        with pool.lend(1) as workers:
            with pytest.raises(StorageError, match="could not send its result back"):
                list(call_in_workers(workers, [(threading.Lock, ())]))
            assert [8] == list(call_in_workers(workers, [(pow, (2, 3))]))
    finally:
        pool.close()


@pytest.mark.timeout(60)
def test_a_call_the_worker_cannot_read_is_an_error_and_the_worker_lives_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function from a module only this process can import (its directory joined
    ``sys.path`` after the worker started): the worker answers with an error instead of
    losing the message and leaving the load waiting for ever."""
    pool = ParserPool()
    try:
        with pool.lend(1) as workers:
            (tmp_path / "only_here.py").write_text("def answer():\n    return 42\n")
            monkeypatch.syspath_prepend(str(tmp_path))
            only_here = importlib.import_module("only_here")

            with pytest.raises(StorageError, match="could not read what it was sent"):
                list(call_in_workers(workers, [(only_here.answer, ())]))
            assert [8] == list(call_in_workers(workers, [(pow, (2, 3))]))
    finally:
        pool.close()


@pytest.mark.timeout(60)
async def test_a_table_whose_formats_a_worker_cannot_import_fails_the_load_cleanly(
    workers_settings: Settings,
    generated_set: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_jsonl_file_in_workers: list[str],
) -> None:
    """A value format whose function lives in a module the workers cannot import: the
    table's plan cannot be read there, so the load fails with a StorageError naming
    why, and the tenant holds nothing."""
    pool = ParserPool()
    monkeypatch.setattr(data_loader, "POOL", pool)
    pool.prestart(2)  # before the format's module is importable here
    (tmp_path / "unseen_formats.py").write_text("def is_word(value):\n    return value.isalpha()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    unseen = importlib.import_module("unseen_formats")
    monkeypatch.setitem(
        FORMATS,
        "word",
        ValueFormat("word", "FORMAT_WORD(v)", "a word", {"FORMAT_WORD": unseen.is_word}),
    )
    try:
        async with FixtureManager(workers_settings) as manager:
            table = manager.store.metadata.tables["tenant.listening_events"]
            monkeypatch.setitem(table.c.platform.info, "format", "word")
            await manager.create_tenant("unseen")

            with pytest.raises(StorageError, match="could not rebuild the table"):
                await manager.load_fixtures("unseen", source=generated_set)

            assert 0 == await _total_rows(manager, "unseen")
            await manager.drop_tenant("unseen")
    finally:
        pool.close()


@pytest.mark.timeout(60)
def test_workers_wait_past_a_default_socket_timeout_the_application_set() -> None:
    """``socket.setdefaulttimeout`` in the application does not make the channel to a
    worker time out (or fail at once, non-blocking) while a call takes longer."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(0.2)
    try:
        pool = ParserPool()
        try:
            with pool.lend(1) as workers:
                assert [None, 8] == list(
                    call_in_workers(workers, [(time.sleep, (0.6,)), (pow, (2, 3))])
                )
        finally:
            pool.close()
    finally:
        socket.setdefaulttimeout(before)
