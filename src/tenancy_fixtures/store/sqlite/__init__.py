"""SQLite, the embedded default: one database file per tenant."""
