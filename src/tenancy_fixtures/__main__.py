"""``python -m tenancy_fixtures``: the ``tenancy-fixtures`` command, where its script is
not on the ``PATH`` (a virtualenv not activated, a container's bare Python)."""

from tenancy_fixtures.cli.app import main

main()
