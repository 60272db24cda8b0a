"""Helpers the tests share (fixtures live in tests/conftest.py)."""
