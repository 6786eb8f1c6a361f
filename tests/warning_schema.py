"""A user's schema module that raises a Python warning when it is imported (the CLI's
``--log-json`` must turn it into a JSON event like any other)."""

from __future__ import annotations

import warnings

from tests.user_schema import user_metadata

warnings.warn("a schema module that warns", UserWarning, stacklevel=1)

metadata = user_metadata()
