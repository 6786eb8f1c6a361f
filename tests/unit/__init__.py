"""Unit tests: one module, no server."""
