"""Hostile input: a corpus of bad fixture files and property-based tests."""
