"""Integration tests: the library against real SQLite, PostgreSQL and Redis."""
