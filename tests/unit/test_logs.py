"""The library's logger: the standard library's logging until the application configures
structlog, structlog's configuration from then on; never local variables."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import LogCapture, capture_logs

from tenancy_fixtures.logs import configure_when_used, get_logger

NAME = "tenancy_fixtures.test_logs"


@pytest.fixture(autouse=True)
def unconfigured_structlog() -> Iterator[None]:
    """structlog as an application that never configured it has it (other tests of the
    process may have configured it); restored afterwards."""
    saved = structlog.get_config()
    was_configured = structlog.is_configured()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)
    if not was_configured:
        structlog.reset_defaults()


def secret_in_a_local() -> None:
    record = {"display_name": "a value only a local variable holds"}
    raise RuntimeError(f"failed on a record of {len(record)} field(s)")


class TestUnconfigured:
    def test_events_go_to_the_standard_logger_named_for_the_module(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without structlog configuration an event is one line on the module's logger."""
        caplog.set_level(logging.INFO, logger=NAME)

        get_logger(NAME).bind(tenant_id="acme").info("tenant_created", tier="free")

        assert [(NAME, logging.INFO, "tenant_created tenant_id='acme' tier='free'")] == [
            (r.name, r.levelno, r.getMessage()) for r in caplog.records
        ]

    def test_events_below_the_logger_level_are_dropped(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """At the standard library's default level (WARNING) an info event is dropped."""
        caplog.set_level(logging.WARNING, logger=NAME)

        get_logger(NAME).info("tenant_created", tenant_id="acme")
        get_logger(NAME).warning("config_cache_unavailable", op="get")

        assert ["config_cache_unavailable op='get'"] == [r.getMessage() for r in caplog.records]

    def test_the_record_names_the_line_that_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """``%(funcName)s`` and ``%(lineno)d`` name the caller, not the logger's own code."""
        caplog.set_level(logging.INFO, logger=NAME)

        get_logger(NAME).info("here")

        assert [__file__] == [r.pathname for r in caplog.records]
        assert ["test_the_record_names_the_line_that_logged"] == [
            r.funcName for r in caplog.records
        ]

    def test_an_exception_is_logged_with_its_traceback_and_no_local_variables(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """``exception()`` hands the exception to logging, whose traceback has no locals."""
        caplog.set_level(logging.INFO, logger=NAME)
        try:
            secret_in_a_local()
        except RuntimeError:
            get_logger(NAME).exception("load_failed", tenant_id="acme")

        (record,) = caplog.records
        rendered = logging.Formatter().format(record)
        assert logging.ERROR == record.levelno
        assert "RuntimeError: failed on a record of 1 field(s)" in rendered
        assert "only a local variable holds" not in rendered

    def test_exc_info_may_be_the_exception_itself(self, caplog: pytest.LogCaptureFixture) -> None:
        """``error(..., exc_info=exc)`` outside an ``except`` block keeps the exception."""
        caplog.set_level(logging.INFO, logger=NAME)
        error = ValueError("late")

        get_logger(NAME).error("load_failed", exc_info=error)

        assert [error] == [r.exc_info[1] if r.exc_info else None for r in caplog.records]
        assert ["load_failed"] == [r.getMessage() for r in caplog.records]


class TestConfigured:
    def test_events_follow_structlog_once_the_application_configures_it(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With structlog configured, events and bound values go through it, not logging."""
        caplog.set_level(logging.DEBUG, logger=NAME)

        with capture_logs() as events:
            get_logger(NAME).bind(tenant_id="acme").info("tenant_created", tier="free")

        assert [
            {"event": "tenant_created", "tenant_id": "acme", "tier": "free", "log_level": "info"}
        ] == events
        assert [] == caplog.records


class TestConfigureWhenUsed:
    """An application's structlog configuration handed to ``configure_when_used`` runs
    at the first event at its level, not before (the CLI's: importing structlog costs
    memory a command logging nothing need not hold)."""

    @pytest.fixture(autouse=True)
    def nothing_waits(self) -> Iterator[None]:
        yield
        configure_when_used(None)

    def test_an_event_below_the_level_is_dropped_and_configures_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls: list[int] = []
        configure_when_used(lambda: calls.append(1), level=logging.WARNING)
        caplog.set_level(logging.DEBUG)

        get_logger(NAME).info("tenant_created", tenant_id="acme")

        assert ([], []) == (calls, caplog.records)

    def test_the_first_event_at_the_level_configures_once_and_goes_through_structlog(
        self,
    ) -> None:
        calls: list[int] = []
        capture = LogCapture()

        def configure() -> None:
            calls.append(1)
            structlog.configure(processors=[capture])

        configure_when_used(configure, level=logging.WARNING)
        get_logger(NAME).warning("limit_exceeded", limit="users")
        get_logger(NAME).error("load_failed")

        assert [1] == calls
        assert ["limit_exceeded", "load_failed"] == [e["event"] for e in capture.entries]

    def test_a_withdrawn_configuration_leaves_events_to_logging(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls: list[int] = []
        configure_when_used(lambda: calls.append(1), level=logging.WARNING)
        configure_when_used(None)

        get_logger(NAME).warning("limit_exceeded")

        assert [] == calls
        assert ["limit_exceeded"] == [r.getMessage() for r in caplog.records]
