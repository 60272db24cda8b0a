"""Alembic migrations of the registry catalog (installed as ``registry_migrations``)."""
