"""A user's schema module that logs through the standard library when it is imported, as
a driver or asyncio does (the CLI's ``--log-json`` must turn it into a JSON event too)."""

from __future__ import annotations

import logging

from tests.user_schema import user_metadata

logging.getLogger("some.driver").warning("a driver that logs through logging")

metadata = user_metadata()
