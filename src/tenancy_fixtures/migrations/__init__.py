"""Fleet migrations: every tenant's schema moved through an Alembic revision history.

* :mod:`.scripts` reads the history (an Alembic ``versions/`` directory) and plans steps;
* :mod:`.operations` runs revision code on one tenant's connection, every statement put
  in the tenant's schema by ``schema_translate_map``;
* :mod:`.runner` migrates one tenant in one transaction with its ledger row, and a fleet
  of them with bounded concurrency, canaries and a report;
* :mod:`.drift` compares a live tenant schema with the code's.
"""
