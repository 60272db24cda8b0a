"""Catalog table of API tokens. Only the SHA-256 of a secret is stored, never the secret itself."""

from __future__ import annotations

from sqlalchemy import Column, Double, Text
from sqlmodel import Field, SQLModel

__all__ = ["ApiTokenRow", "DeniedWindowRow"]


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


class DeniedWindowRow(SQLModel, table=True):
    """The ``request.denied`` throttle of one token (or anonymous client address), shared by every process:
    when its window began and how many refusals in it were counted but not recorded."""

    __tablename__ = "denied_window"

    key: str = Field(primary_key=True, max_length=300, description="'token:NAME' or 'addr:ADDRESS'")
    window_started: float = Field(sa_column=Column(Double, nullable=False, index=True),
                                  description="UNIX time the recorded refusal opened the window")
    suppressed: int = Field(default=0, description="refusals in or since the window not yet recorded")
