"""Reading a revision history: the chain, targets, steps, and histories refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from tenancy_fixtures.errors import MigrationError, UnknownRevisionError
from tenancy_fixtures.migrations.scripts import BUILTIN_MIGRATIONS, MigrationScripts

BUILTIN = ["0001_baseline", "0002_retention_indexes", "0003_daily_streams"]


def _history(tmp_path: Path, *revisions: tuple[str, str | None, str]) -> MigrationScripts:
    versions = tmp_path / "history" / "versions"
    versions.mkdir(parents=True)
    for revision, down, extra in revisions:
        (versions / f"{revision}.py").write_text(
            f'"""{revision}."""\n{extra}\nrevision = {revision!r}\n'
            f"down_revision = {down!r}\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
            "def downgrade() -> None:\n    pass\n"
        )
    return MigrationScripts(str(tmp_path / "history"))


def test_the_built_in_chain_read_from_the_files_is_alembics() -> None:
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)

    assert scripts.chain == BUILTIN
    assert scripts._alembic_chain == BUILTIN
    assert (scripts.base, scripts.head) == (BUILTIN[0], BUILTIN[-1])


def test_targets_resolve_by_name_prefix_and_offset() -> None:
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)

    assert scripts.resolve("head") == BUILTIN[-1]
    assert scripts.resolve("base") == BUILTIN[0]
    assert scripts.resolve("0002") == BUILTIN[1]
    assert scripts.resolve("-1", BUILTIN[-1]) == BUILTIN[1]
    assert scripts.resolve("+2", BUILTIN[0]) == BUILTIN[2]


@pytest.mark.parametrize("target", ["-3", "nope", "000", ""])
def test_a_target_outside_the_history_is_refused_as_the_callers_input(target: str) -> None:
    with pytest.raises(UnknownRevisionError) as raised:
        MigrationScripts(BUILTIN_MIGRATIONS).resolve(target, BUILTIN[-1])

    assert 2 == raised.value.exit_code
    assert BUILTIN == raised.value.revisions


def test_an_exact_id_wins_over_being_a_prefix_of_other_ids(tmp_path: Path) -> None:
    """With revisions "1".."11", ``--to 1`` said "3 revisions match '1'"."""
    ids = [str(n) for n in range(1, 12)]
    downs = [None, *ids[:-1]]
    scripts = _history(tmp_path, *((rev, down, "") for rev, down in zip(ids, downs, strict=True)))

    assert scripts.resolve("1") == "1"
    assert scripts.resolve("11") == "11"
    scripts.check("1")
    assert [s.revision for s in scripts.steps("3", "1")] == ["3", "2"]


@pytest.mark.parametrize("target", ["-\u0661", "+\u0661", "-\uff11", "-1\n", " -1", "-1 "])
def test_an_offset_in_other_than_ascii_digits_is_refused(target: str) -> None:
    """``-\u0661`` (an Arabic-Indic one) was taken as -1; a final newline was ignored."""
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)

    with pytest.raises(UnknownRevisionError) as raised:
        scripts.resolve(target, BUILTIN[-1])
    with pytest.raises(UnknownRevisionError):
        scripts.check(target)
    assert raised.value.exit_code == 2


def test_a_target_is_checked_before_any_tenant_unless_it_counts_from_the_tenants_own() -> None:
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)
    for relative in ("+9", "-9", "head", "base", "0002"):
        scripts.check(relative)
    with pytest.raises(UnknownRevisionError, match="match 'nope': give one of 0001_baseline"):
        scripts.check("nope")


def test_steps_go_up_in_order_and_down_in_reverse() -> None:
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)

    up = scripts.steps(BUILTIN[0], BUILTIN[-1])
    down = scripts.steps(BUILTIN[-1], BUILTIN[0])

    assert [(s.revision, s.direction, s.target) for s in up] == [
        (BUILTIN[1], "upgrade", BUILTIN[1]),
        (BUILTIN[2], "upgrade", BUILTIN[2]),
    ]
    assert [(s.revision, s.direction, s.target) for s in down] == [
        (BUILTIN[2], "downgrade", BUILTIN[1]),
        (BUILTIN[1], "downgrade", BUILTIN[0]),
    ]
    assert scripts.steps(BUILTIN[1], BUILTIN[1]) == []


def test_a_revision_id_computed_at_import_is_left_to_alembic(tmp_path: Path) -> None:
    scripts = _history(tmp_path, ("a1", None, ""), ("b2", "a1", ""))
    (tmp_path / "history" / "versions" / "b2.py").write_text(
        'revision = "b" + "2"\ndown_revision = "a1"\n\n\ndef upgrade() -> None:\n    pass\n'
    )

    assert scripts.chain == ["a1", "b2"]


def test_two_heads_are_refused_naming_them(tmp_path: Path) -> None:
    scripts = _history(tmp_path, ("a1", None, ""), ("b2", "a1", ""), ("c3", "a1", ""))

    with pytest.raises(MigrationError, match="several heads"):
        _ = scripts.chain


def test_a_directory_without_versions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no versions/"):
        MigrationScripts(str(tmp_path))


def _refusal(scripts: MigrationScripts) -> str:
    """The :class:`MigrationError` reading ``scripts`` ends in (its chain, then the
    steps that import the revision modules), checking no warning got out."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(MigrationError) as raised:
            scripts.steps(scripts.base, scripts.head)
    assert [] == [str(w.message) for w in caught]
    assert 9 == raised.value.exit_code
    return raised.value.message


@pytest.mark.parametrize(
    ("extra", "fault"),
    [
        ("def broken(:\n    pass", "b2.py, line 2: SyntaxError: invalid syntax"),
        ("raise RuntimeError('boom at import')", "b2.py, line 2: RuntimeError: boom at import"),
    ],
)
def test_a_revision_file_that_cannot_be_imported_is_a_migration_error_naming_it(
    tmp_path: Path, extra: str, fault: str
) -> None:
    """It escaped as the SyntaxError or RuntimeError itself ("unexpected error", exit 1)."""
    scripts = _history(tmp_path, ("a1", None, ""), ("b2", "a1", extra))

    message = _refusal(scripts)

    assert message.startswith(f"migrations {tmp_path / 'history'}: {tmp_path / 'history'}")
    assert message.endswith(fault)


def test_a_down_revision_no_file_declares_is_a_migration_error_naming_the_file(
    tmp_path: Path,
) -> None:
    """It was Alembic's UserWarning, then "KeyError: 'nope'" (exit 1), even for the head."""
    scripts = _history(tmp_path, ("a1", None, ""), ("b2", "nope", ""))
    versions = tmp_path / "history" / "versions"

    assert _refusal(scripts).endswith(
        f"{versions / 'b2.py'} (revision 'b2') has down_revision 'nope', "
        "which no revision file declares"
    )
    (versions / "b2.py").write_text('revision = "b" + "2"\ndown_revision = "nope"\n')
    assert "Revision nope referenced from" in _refusal(MigrationScripts(str(versions.parent)))


def test_a_revision_id_declared_twice_is_a_migration_error_naming_both_files(
    tmp_path: Path,
) -> None:
    """It passed while every tenant was at the head, then was "several heads (b2, b2)"
    after a raw UserWarning."""
    scripts = _history(tmp_path, ("a1", None, ""), ("b2", "a1", ""))
    versions = tmp_path / "history" / "versions"
    (versions / "b2_again.py").write_text((versions / "b2.py").read_text())

    with pytest.raises(MigrationError) as raised:
        _ = scripts.head
    assert raised.value.message.endswith(
        f"{versions / 'b2.py'} and {versions / 'b2_again.py'} both declare revision 'b2'; "
        "give each revision its own id"
    )
    (versions / "b2_again.py").write_text('revision = "b" + "2"\ndown_revision = "a1"\n')
    assert _refusal(MigrationScripts(str(versions.parent))).endswith(
        "Revision b2 is present more than once"
    )


def test_an_offset_of_thousands_of_digits_leaves_the_history_as_the_callers_input() -> None:
    """``int()`` refuses more than 4,300 digits: ``--to -999...`` ended in "unexpected
    error: ValueError" (exit 1), and the message would have held every digit."""
    scripts = MigrationScripts(BUILTIN_MIGRATIONS)

    for target, shown in [
        ("-" + "9" * 5000, "-" + "9" * 19 + "..."),
        ("+" + "1" * 5000, "+" + "1" * 19 + "..."),
        ("-1" + "0" * 9, "-1000000000"),
    ]:
        with pytest.raises(UnknownRevisionError) as raised:
            scripts.resolve(target, BUILTIN[-1])
        assert raised.value.exit_code == 2
        assert str(raised.value).startswith(f"{shown} from {BUILTIN[-1]} leaves the history")
    assert scripts.resolve("+" + "0" * 5000 + "2", BUILTIN[0]) == BUILTIN[2]
    assert scripts.resolve("-000000000001", BUILTIN[1]) == BUILTIN[0]


def test_a_revision_id_longer_than_the_ledger_holds_is_refused_naming_its_file(
    tmp_path: Path,
) -> None:
    """The ledger keeps ids of up to 64 characters: PostgreSQL refused a longer one as
    each tenant was created or migrated; SQLite kept it."""
    long_id, longest = "b" * 65, "c" * 64
    scripts = _history(tmp_path, ("a1", None, ""), (long_id, "a1", ""))
    versions = tmp_path / "history" / "versions"
    refusal = "65 characters; the migration ledger records ids of at most 64: give it a shorter one"

    with pytest.raises(MigrationError) as raised:
        _ = scripts.head
    assert raised.value.message.endswith(
        f"{versions / (long_id + '.py')} declares revision {long_id!r}, {refusal}"
    )
    (versions / f"{long_id}.py").write_text('revision = "b" * 65\ndown_revision = "a1"\n')
    assert _refusal(MigrationScripts(str(versions.parent))).endswith(refusal)
    fine = _history(tmp_path / "fine", ("a1", None, ""), (longest, "a1", ""))
    assert fine.head == longest
