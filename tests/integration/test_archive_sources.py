"""A PATH naming an archive (``export.tar.gz``, ``set.zip``) loads as the fixture set it
holds, on both backends: unpacked safely into a private folder that is gone afterwards,
refused naming the archive when it is none or unsafe, with nothing loaded."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import FixtureSetError
from tests.integration.subject_data import loaded_tenant, table_rows

SOURCE = "archived"
COPY = "unarchived"


@pytest.fixture
async def unpacking(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """The test's manager, unpacking archives under the test's own work folder."""
    work = tmp_path / "work"
    work.mkdir()
    async with FixtureManager(settings.model_copy(update={"service_work_dir": work})) as manager:
        for tenant in (SOURCE, COPY, "second_copy"):
            await _drop(manager, tenant)
        yield manager
        for tenant in (SOURCE, COPY, "second_copy"):
            await _drop(manager, tenant)


async def _drop(manager: FixtureManager, tenant: str) -> None:
    if tenant in {t.tenant_id for t in await manager.list_tenants()}:
        await manager.drop_tenant(tenant)


def _work_folder(manager: FixtureManager) -> list[Path]:
    work = manager.settings.service_work_dir
    assert work is not None
    return list(work.iterdir())


def _zipped(directory: Path, archive: Path) -> Path:
    """``directory``'s files zipped inside one folder, as a user's zip tool would."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(directory.iterdir()):
            zipped.write(path, f"{directory.name}/{path.name}")
    return archive


async def test_an_export_packed_as_tar_gz_loads_into_a_new_tenant_as_the_same_rows(
    unpacking: FixtureManager, tmp_path: Path
) -> None:
    """``export acme ./acme.tar.gz`` then ``load-fixtures copy ./acme.tar.gz`` was
    refused ("'acme.tar.gz' is not a source file"), though the export's help says to
    load it elsewhere with load-fixtures."""
    await loaded_tenant(unpacking, SOURCE)
    archive = tmp_path / "acme.tar.gz"
    await unpacking.export_tenant(SOURCE, archive)
    await unpacking.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))

    report = await unpacking.load_fixtures(COPY, source=archive)

    assert report.changed
    assert await table_rows(unpacking, COPY) == await table_rows(unpacking, SOURCE)
    validation = await unpacking.validate_tenant(COPY)
    assert validation.ok, validation.problems
    assert [] == _work_folder(unpacking)
    assert archive.is_file()  # the user's archive is read, never removed


async def test_a_zip_of_a_fixture_set_loads_into_many_tenants_unpacked_once(
    unpacking: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    archive = _zipped(demo_set, tmp_path / "demo.zip")
    for tenant in (COPY, "second_copy"):
        await unpacking.create_tenant(TenantFixture(tenant_id=tenant, tier="enterprise"))

    report = await unpacking.load_fixtures_many([COPY, "second_copy"], source=archive)

    assert not report.failures, report.failures
    assert {COPY, "second_copy"} == set(report.reports)
    assert await table_rows(unpacking, COPY) == await table_rows(unpacking, "second_copy")
    assert [] == _work_folder(unpacking)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("set.tar.gz", b"not an archive at all", "it is not a zip or tar archive"),
        ("set.tar", None, "entry '../escaped/users.json' points outside the archive"),
    ],
    ids=["not-an-archive", "entry-climbing-out"],
)
async def test_a_bad_archive_is_refused_naming_it_and_loads_nothing(
    unpacking: FixtureManager,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    reason: str,
) -> None:
    archive = tmp_path / name
    if content is not None:
        archive.write_bytes(content)
    else:
        with tarfile.open(archive, "w") as tar:
            data = b'[{"user_id": "u1"}]'
            entry = tarfile.TarInfo("../escaped/users.json")
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    await unpacking.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))

    with pytest.raises(FixtureSetError) as refused:
        await unpacking.load_fixtures(COPY, source=archive)

    assert refused.value.path == archive
    assert f"{archive}: the archive is refused: {reason}" in str(refused.value)
    assert (await unpacking.tenant_status(COPY)).total_rows == 0
    assert [] == _work_folder(unpacking)
    assert not (tmp_path / "escaped").exists()
