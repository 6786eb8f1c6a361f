"""The ``tenancy-fixtures`` CLI, run in-process."""
