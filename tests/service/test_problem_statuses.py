"""Every library error has the HTTP status its CLI exit code promises."""

from __future__ import annotations

import inspect

import pytest

from tenancy_fixtures import errors
from tenancy_fixtures.service.problems import status_of

NOT_FOUND = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.TenancyFixturesError) and cls.exit_code == 4
]


def test_the_not_found_errors_are_the_ones_the_cli_reports_with_exit_4() -> None:
    assert {"SubjectNotFoundError", "TenantNotFoundError", "TokenNotFoundError"} <= {
        cls.__name__ for cls in NOT_FOUND
    }


@pytest.mark.parametrize("cls", NOT_FOUND, ids=lambda cls: cls.__name__)
def test_an_error_the_cli_reports_as_not_found_is_a_404(
    cls: type[errors.TenancyFixturesError],
) -> None:
    """``SubjectNotFoundError`` (exit 4) would have answered 400, as an unmapped error."""
    assert 404 == status_of(cls.__new__(cls))


def test_a_limit_lowered_below_usage_is_a_409_with_a_refused_loads_exit_code() -> None:
    """The tenant's state, not the request, is what conflicts with the change; the CLI
    exits as for a load refused by a limit."""
    refused = errors.LimitBelowUsageError(limit="users", value=20, maximum=5, tenant_id="t")
    assert (409, errors.LimitExceededError.exit_code) == (status_of(refused), refused.exit_code)
