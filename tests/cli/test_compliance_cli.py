"""export, erase and erase --verify from the shell, on both backends: a round trip
through load-fixtures and validate-data, the feature gate's exit code, an erasure that
validate-data still accepts, and --verify failing on a planted remnant."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tenancy_fixtures.cli.compliance import REMNANTS_EXIT
from tests.cli.cli_runner import Cli, assert_one_line_error, with_manager
from tests.integration.subject_data import SUBJECT, SUBJECT_EMAIL
from tests.planes import plane_of


def test_an_export_loads_into_a_new_tenant_that_validates(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """export writes the set and its manifest; load-fixtures --source loads it into a new
    tenant; validate-data passes there."""
    source, copy = f"{tenant_prefix}src", f"{tenant_prefix}copy"
    cli.ok("init-tenant", source, "--tier", "enterprise", "--load")
    out = tmp_path / "export"
    exported = json.loads(cli.ok("export", source, str(out), "--json").stdout)
    assert exported["rows"]["listening_events"] > 0
    assert (out / "fixtures.json").is_file()
    cli.ok("init-tenant", copy, "--tier", "enterprise")
    cli.ok("load-fixtures", copy, str(out))
    cli.ok("validate-data", copy)


def test_an_export_packed_as_tar_gz_loads_as_written_in_the_export_help(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """`export SRC out.tar.gz`, then `load-fixtures COPY out.tar.gz` and `validate-data
    --source out.tar.gz` (both exited 5: "is not a source file"); a file named as an
    archive that is none exits 5 naming it."""
    source, copy = f"{tenant_prefix}src", f"{tenant_prefix}copy"
    cli.ok("init-tenant", source, "--tier", "enterprise", "--load")
    out = tmp_path / "export.tar.gz"
    cli.ok("export", source, str(out))
    cli.ok("init-tenant", copy, "--tier", "enterprise")

    loaded = cli.ok("load-fixtures", copy, str(out))

    assert f"{copy}: loaded " in loaded.stdout
    cli.ok("validate-data", copy)
    assert " records checked" in cli.ok("validate-data", "--source", str(out)).stdout
    fake = tmp_path / "fake.zip"
    fake.write_text("no zip", encoding="utf-8")
    line = assert_one_line_error(cli("load-fixtures", copy, str(fake)), 5, "error: ")
    assert f"{fake}: the archive is refused: it is not a zip or tar archive" in line


def test_an_export_without_the_feature_exits_with_the_config_code(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """A free tenant: one line naming the data_export feature, exit code 2."""
    tenant = f"{tenant_prefix}free"
    cli.ok("init-tenant", tenant)
    result = cli("export", tenant, str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "data_export" in result.stderr


def test_an_export_to_an_existing_destination_exits_2_and_leaves_it(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """An archive or file already there is an argument to change (exit 2, once 5: "fixture
    data refused"), named in one line, and kept as it was."""
    tenant = f"{tenant_prefix}twice"
    cli.ok("init-tenant", tenant, "--tier", "enterprise")
    out = tmp_path / "export.tar.gz"
    cli.ok("export", tenant, str(out))
    before = out.read_bytes()
    result = cli("export", tenant, str(out))
    assert result.exit_code == 2, result.output
    assert f"{out}: the export's destination exists already" in result.stderr
    assert before == out.read_bytes()


def test_erase_then_verify_passes_until_a_remnant_is_planted(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """erase deletes the person (validate-data still passes); erase --verify exits 0,
    then REMNANTS_EXIT once their e-mail turns up in a reject file."""
    tenant = f"{tenant_prefix}erase"
    rejects = tmp_path / "rejects"
    cli.env["TENANCY_REJECT_DIR"] = str(rejects)
    cli.ok("init-tenant", tenant, "--tier", "enterprise", "--load")
    erased = json.loads(cli.ok("erase", tenant, "--subject", SUBJECT, "--json").stdout)
    assert erased["deleted"]["users"] == 1
    cli.ok("validate-data", tenant)
    assert (
        "nothing of the subject is left"
        in cli.ok("erase", tenant, "--subject", SUBJECT, "--verify").stdout
    )

    rejects.mkdir(exist_ok=True)
    line = {"table": "users", "record": {"email": SUBJECT_EMAIL}}
    plane = with_manager(cli.database_url, plane_of)
    planted = rejects / f"{tenant}-{plane}-{uuid.uuid4().hex}.jsonl"
    planted.write_text(json.dumps(line) + "\n")
    result = cli("erase", tenant, "--subject", SUBJECT, "--verify")
    assert result.exit_code == REMNANTS_EXIT, result.output
    assert "reject file" in result.stdout
    assert SUBJECT_EMAIL not in result.stdout


def test_erase_export_and_verify_of_an_id_no_one_holds_exit_not_found(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """The person's id upper-cased: erase and export refused (exit 4), --verify says no
    erasure of it is on record (exit 4), not that nothing of it is left."""
    tenant = f"{tenant_prefix}typo"
    cli.ok("init-tenant", tenant, "--tier", "enterprise", "--load")
    typo = SUBJECT.upper()

    erased = cli("erase", tenant, "--subject", typo)
    exported = cli("export", tenant, str(tmp_path / "out"), "--subject", typo)
    verified = cli("erase", tenant, "--subject", typo, "--verify")

    assert 4 == erased.exit_code, erased.output
    assert "users.user_id" in erased.stderr
    assert "check the id" in erased.stderr
    assert 4 == exported.exit_code, exported.output
    assert not (tmp_path / "out").exists()
    assert 4 == verified.exit_code, verified.output
    assert "no erasure of this id is on record" in verified.stdout
    assert "nothing of the subject is left" not in verified.stdout
    remnants = cli("erase", tenant, "--subject", SUBJECT, "--verify")
    assert REMNANTS_EXIT == remnants.exit_code
    assert "no erasure of this id is on record" in remnants.stdout


def test_erase_refuses_an_unknown_mode(cli: Cli, tenant_prefix: str) -> None:
    """--mode is delete or pseudonymise."""
    tenant = f"{tenant_prefix}mode"
    cli.ok("init-tenant", tenant)
    result = cli("erase", tenant, "--subject", SUBJECT, "--mode", "shred")
    assert result.exit_code == 2


def test_erase_export_and_verify_of_an_id_that_is_not_valid_text_exit_invalid_input(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """``--subject $'\\xff'`` (a byte the shell could not decode): one line saying so and
    exit 2, as for a NUL, not an unexpected UnicodeEncodeError (exit 1)."""
    tenant = f"{tenant_prefix}bytes"
    cli.ok("init-tenant", tenant, "--tier", "enterprise")
    for args in (
        ("erase", tenant, "--subject", "\udcff"),
        ("erase", tenant, "--subject", "\udcff", "--verify"),
        ("export", tenant, str(tmp_path / "out"), "--subject", "\udcff"),
    ):
        line = assert_one_line_error(cli(*args), 2, "error: subject")
        assert "not valid UTF-8" in line


def test_erase_with_audit_logging_off_exits_2_and_erases_nothing(
    cli: Cli, tenant_prefix: str
) -> None:
    """One line naming TENANCY_AUDIT_LOGGING, exit 2, no row gone; --verify still runs
    (on receipts recorded before) and notes that audit logging is off."""
    tenant = f"{tenant_prefix}unaudited"
    cli.ok("init-tenant", tenant, "--tier", "enterprise", "--load")
    cli.env["TENANCY_AUDIT_LOGGING"] = "false"

    line = assert_one_line_error(cli("erase", tenant, "--subject", SUBJECT), 2, "error:")
    verified = cli("erase", tenant, "--subject", SUBJECT, "--verify")

    assert "TENANCY_AUDIT_LOGGING" in line
    assert REMNANTS_EXIT == verified.exit_code, verified.output
    assert "audit logging is off" in verified.stderr


def test_paths_with_brackets_are_printed_whole_by_export_and_verify(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """``export T ./acme[eu]`` said it wrote to ./acme, and erase --verify named the
    reject directory ./rejects[eu] ./rejects: the brackets were read as markup."""
    tenant = f"{tenant_prefix}brackets"
    rejects = tmp_path / "rejects[eu]"
    cli.env["TENANCY_REJECT_DIR"] = str(rejects)
    cli.ok("init-tenant", tenant, "--tier", "enterprise")
    out = tmp_path / "acme[eu]"

    exported = cli.ok("export", tenant, str(out))
    verified = cli("erase", tenant, "--subject", SUBJECT, "--verify")

    assert (out / "fixtures.json").is_file()
    assert str(out) in exported.stdout.replace("\n", "")
    assert 4 == verified.exit_code, verified.output
    assert str(rejects) in verified.stdout.replace("\n", "")
