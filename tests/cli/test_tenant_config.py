"""``tenancy-fixtures config``: an existing tenant's config read and changed from a shell,
on both backends (before it, only ``init-tenant`` set a config from the CLI)."""

from __future__ import annotations

from tests.cli.cli_runner import Cli, assert_one_line_error


def test_config_shows_the_tenants_resolved_config(cli: Cli, tenant_prefix: str) -> None:
    """Without options it only reads: the tier's defaults with the tenant's overrides."""
    tenant = f"{tenant_prefix}shown"
    cli.ok("init-tenant", tenant, "--tier", "free", "-l", "users=3")

    shown = cli.json("config", tenant, "--json")
    text = cli.ok("config", tenant).stdout

    assert ("free", 3) == (shown["tier"], shown["limits"]["users"])
    assert "tier free" in text
    assert "users=3" in text
    assert "storage=1GB" in text


def test_config_changes_part_of_the_config_keeping_other_overrides(
    cli: Cli, tenant_prefix: str
) -> None:
    """A new tier brings its defaults with the tenant's own overrides on top; a setting
    set to null keeps events forever; each change is one audited ``config.apply``."""
    tenant = f"{tenant_prefix}changed"
    cli.ok("init-tenant", tenant, "--tier", "free", "-l", "users=3", "-s", "locale=fr")
    before = _applied(cli, tenant)

    changed = cli.json("config", tenant, "--tier", "premium", "-s", "retention_days=null", "--json")
    kept = cli.json("config", tenant, "--json")

    assert "premium" == changed["tier"]
    assert 3 == changed["limits"]["users"]  # the tenant's own override
    assert 10 == changed["limits"]["workspaces"]  # premium's default
    assert "fr" == changed["settings"]["locale"]
    assert changed["settings"]["retention_days"] is None
    assert changed == kept
    assert [*before, "ok"] == _applied(cli, tenant)


def test_config_replaces_or_drops_the_extra_feature_flags(cli: Cli, tenant_prefix: str) -> None:
    """``-f`` gives the flags beyond the tier's (replacing the earlier extras);
    ``--no-features`` drops them all; the tier's own flags stay."""
    tenant = f"{tenant_prefix}flags"
    cli.ok("init-tenant", tenant, "--tier", "free")
    tier_flags = set(cli.json("config", tenant, "--json")["features"])

    added = cli.json("config", tenant, "-f", "data_export", "--json")
    dropped = cli.json("config", tenant, "--no-features", "--json")

    assert tier_flags | {"data_export"} == set(added["features"])
    assert tier_flags == set(dropped["features"])


def test_config_refuses_a_limit_below_what_the_tenant_holds_with_exit_10(
    cli: Cli, tenant_prefix: str
) -> None:
    """Lowering a limit below the tenant's usage is refused when made (exit 10, naming
    limit and usage), and the config stays as it was."""
    tenant = f"{tenant_prefix}full"
    cli.ok("init-tenant", tenant, "--tier", "premium", "--load")
    users = cli.json("show", tenant, "--json")["row_counts"]["users"]
    assert users > 1

    refused = Cli(cli.database_url, {"TENANCY_ENFORCE_LIMITS": "true"})(
        "config", tenant, "-l", "users=1"
    )

    line = assert_one_line_error(refused, 10, "error: ")
    assert f"tenant '{tenant}': limit 'users' cannot be lowered to 1" in line
    assert f"holds {users}" in line
    assert 1 != cli.json("config", tenant, "--json")["limits"]["users"]


def test_config_of_an_unknown_tenant_exits_4_and_a_bad_value_exits_2(
    cli: Cli, tenant_prefix: str
) -> None:
    """An unknown tenant is exit 4 (nothing created); an unknown limit names the valid
    ones, a tier that does not exist the tiers, both exit 2."""
    tenant = f"{tenant_prefix}known"
    cli.ok("init-tenant", tenant)

    ghost = cli("config", f"{tenant_prefix}ghost", "--tier", "premium")
    bogus = cli("config", tenant, "-l", "bogus=1")
    platinum = cli("config", tenant, "--tier", "platinum")

    assert 4 == ghost.exit_code, ghost.output
    assert f"{tenant_prefix}ghost" not in cli.tenant_ids()
    assert 2 == bogus.exit_code, bogus.output
    assert "the limits are api_calls, storage, users" in bogus.output
    assert 2 == platinum.exit_code, platinum.output
    assert "choose one of free, premium, enterprise" in platinum.output


def test_an_unknown_setting_exits_2_naming_the_known_ones(cli: Cli, tenant_prefix: str) -> None:
    """``init-tenant -s nope=1`` made the tenant and ``config T -s nope=1`` changed it,
    keeping a setting nothing reads; both exit 2 as an unknown limit does."""
    tenant = f"{tenant_prefix}typo"

    created = cli("init-tenant", tenant, "-s", "nope=1")
    assert 2 == created.exit_code, created.output
    assert tenant not in cli.tenant_ids()
    cli.ok("init-tenant", tenant)
    changed = cli("config", tenant, "-s", "nope=1")

    for refused in (created, changed):
        line = assert_one_line_error(refused, 2, f"error: tenant '{tenant}': settings.nope")
        assert "unknown setting; the settings are default_market, locale, region" in line
    assert "nope" not in cli.json("config", tenant)["settings"]


def _applied(cli: Cli, tenant: str) -> list[str]:
    """The outcomes of the tenant's ``config.apply`` audit records, oldest first."""
    trail = cli.json("audit", tenant, "--json")
    return [r["outcome"] for r in reversed(trail) if r["action"] == "config.apply"]


def test_feature_flags_and_no_features_together_are_refused_changing_nothing(
    cli: Cli, tenant_prefix: str
) -> None:
    """``config T -f sso --no-features`` dropped every extra flag, ``sso`` too, and
    exited 0: one of the two went unheard."""
    tenant = f"{tenant_prefix}both"
    cli.ok("init-tenant", tenant, "-f", "data_export")
    before = cli.json("config", tenant, "--json")

    both = cli("config", tenant, "-f", "sso", "--no-features")

    assert_one_line_error(both, 2, "error: give -f/--feature or --no-features, not both")
    assert before == cli.json("config", tenant, "--json")
