"""Catalog table of API tokens. Only the SHA-256 of a secret is stored, never the secret itself."""

from __future__ import annotations

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

__all__ = ["ApiTokenRow"]


class ApiTokenRow(SQLModel, table=True):
    """One bearer token: its name, role and dataset scope."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    role: str = Field(max_length=20)
    datasets: str = Field(sa_column=Column(Text, nullable=False),
                          description="JSON list of dataset names the token sees; [] for every dataset")
    secret_sha256: str = Field(index=True, unique=True, max_length=64)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=200)
    expires_at: str | None = Field(default=None, max_length=32)
    revoked_at: str | None = Field(default=None, max_length=32)
