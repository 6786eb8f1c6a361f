"""Puts ``tests/cli`` on ``sys.path`` so the CLI corpus can use ``cli_runner``.

pytest adds a test folder to ``sys.path`` only when it collects a module from it, so
``tests/hostile`` run alone would not find the CLI helpers. Import this first.
"""

from __future__ import annotations

import sys
from pathlib import Path

_CLI_TESTS = str(Path(__file__).resolve().parent.parent / "cli")
if _CLI_TESTS not in sys.path:
    sys.path.append(_CLI_TESTS)
