"""The hostile corpus through ``FixtureManager.load_fixtures`` and ``FixtureValidator``.

Every case of :mod:`hostile_corpus` is loaded on both backends: a refused set must
raise its typed error naming the file, line or record and column, and leave the
tenant with no row and no data fixture recorded; a set that loads must read back as
written. The same sets go through ``FixtureValidator``, which must report a refused
set's problem, naming the file, instead of crashing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.errors import FixtureFormatError, FixtureSetError, TenancyFixturesError
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.validation import FixtureValidator
from tests.hostile.hostile_checks import (
    SharedTenant,
    assert_loaded,
    assert_names,
    assert_untouched,
    case_params,
    located,
    names,
    read_rows,
)
from tests.hostile.hostile_corpus import (
    CASES,
    SQL_STRINGS,
    YAML_RAN,
    Case,
    Loads,
    Refused,
    build_case,
)

CASES_BY_NAME: Mapping[str, Case] = {case.name: case for case in CASES}
REFUSED = [case for case in CASES if isinstance(case.outcome, Refused)]
LOADING = [case for case in CASES if isinstance(case.outcome, Loads)]
SQL_CASE = "sql-in-jsonl-strings-is-stored-verbatim"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", case_params(REFUSED))
async def test_a_hostile_set_is_refused_by_a_typed_error_and_nothing_is_written(
    corpus_manager: FixtureManager, refusing_tenant: SharedTenant, tmp_path: Path, case: Case
) -> None:
    """The error names tenant, file, line or record and column; the tenant keeps no row."""
    assert isinstance(case.outcome, Refused)
    source = build_case(case, tmp_path)

    with pytest.raises(TenancyFixturesError) as caught:
        await corpus_manager.load_fixtures(refusing_tenant.tenant_id, source=source)

    assert refusing_tenant.tenant_id == caught.value.tenant_id
    assert_names(case.outcome, located(caught.value))
    await assert_untouched(corpus_manager, refusing_tenant.tenant_id)
    refusing_tenant.seen_empty = True
    assert not (source / YAML_RAN).exists()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", case_params(LOADING))
async def test_a_hostile_but_valid_set_loads_and_reads_back_as_written(
    corpus_manager: FixtureManager, fresh_tenant: str, tmp_path: Path, case: Case
) -> None:
    """Byte order marks, quoted newlines, SQL text, the longest text, empty files load."""
    assert isinstance(case.outcome, Loads)

    await corpus_manager.load_fixtures(fresh_tenant, source=build_case(case, tmp_path))

    await assert_loaded(corpus_manager, fresh_tenant, case.outcome)


@pytest.mark.parametrize("case", case_params(CASES))
def test_the_fixture_validator_reports_a_hostile_set_instead_of_crashing(
    tmp_path: Path, case: Case
) -> None:
    """Set-level problems refuse to open the set; file and record problems are reported."""
    source = build_case(case, tmp_path)
    metadata = spotify_metadata()
    outcome = case.outcome
    if isinstance(outcome, Refused) and outcome.error is FixtureSetError:
        with pytest.raises(FixtureSetError) as caught:
            open_fixture_set(source, metadata=metadata)
        assert_names(outcome, caught.value)
        return

    report = FixtureValidator(metadata).validate(open_fixture_set(source, metadata=metadata))

    if isinstance(outcome, Loads):
        assert [] == report.problems
        return
    assert not report.ok
    assert outcome.path is not None
    assert any(outcome.path in problem for problem in report.problems), report.problems
    # The loader reads a batch before typing it, the validator types each record as it
    # is read: where a file has both kinds of problem they may be met in either order.
    assert any(names(outcome, error) for error in report.errors), report.problems


@pytest.mark.asyncio(loop_scope="module")
async def test_sql_in_values_leaves_every_table_in_place(
    corpus_manager: FixtureManager, fresh_tenant: str, tmp_path: Path
) -> None:
    """After loading values that are SQL, every table is still there and holds its rows."""
    source = build_case(CASES_BY_NAME[SQL_CASE], tmp_path)
    await corpus_manager.load_fixtures(fresh_tenant, source=source)

    tracks = await read_rows(corpus_manager, fresh_tenant, "tracks")
    users = await read_rows(corpus_manager, fresh_tenant, "users")
    status = await corpus_manager.tenant_status(fresh_tenant)

    assert sorted(SQL_STRINGS) == sorted(r["name"] for r in tracks)
    assert 3 == len(users)
    assert set(spotify_metadata().tables) == {f"{TENANT_SCHEMA}.{t}" for t in status.row_counts}


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refused_load_leaves_a_tenant_that_passes_the_integrity_checks(
    corpus_manager: FixtureManager, refusing_tenant: SharedTenant, tmp_path: Path
) -> None:
    """After a refusal halfway through the set, the integrity validator finds nothing."""
    source = build_case(CASES_BY_NAME["repeated-key-jsonl"], tmp_path)
    with pytest.raises(FixtureFormatError):
        await corpus_manager.load_fixtures(refusing_tenant.tenant_id, source=source)

    report = await corpus_manager.validate_tenant(refusing_tenant.tenant_id)

    assert [] == report.problems
    assert 0 == report.total_rows
    refusing_tenant.seen_empty = True


def test_case_names_are_unique() -> None:
    """Every corpus case has its own name (they are test ids)."""
    assert len(CASES) == len(CASES_BY_NAME)
