"""The test suite, a package so that each test folder can keep its own ``conftest.py``.

Helpers are imported by their full name (``tests.cli.cli_runner``); pytest puts the
repository root on ``sys.path`` for the ``tests`` package.
"""
