"""Settings from ``REGISTRY_*`` environment variables, and locating the registry home.

The home is the folder that holds the embedded catalog (``catalog.db``), the object store
(``objects/``) and local caches. It is found the way git finds ``.git``: ``--home``, else
``REGISTRY_HOME``, else the nearest ``.registry`` folder walking up from the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.errors import HomeNotFound

__all__ = ["HOME_DIRNAME", "RegistryPaths", "Settings", "find_home"]

HOME_DIRNAME = ".registry"


class Settings(BaseSettings):
    """Configuration read from the environment (prefix ``REGISTRY_``)."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    home: Path | None = None
    database_url: str | None = None
    """SQLAlchemy URL of the catalog; default a SQLite file in the home."""
    storage_url: str | None = None
    """Where objects live; default ``file://<home>/objects``."""
    max_layers: int = 8
    """A branch head with more layers than this is compacted (upper layers merged) after a commit."""
    compact_rows: int = 20_000
    """A head whose layers above the base hold more rows than this is compacted into one layer
    after a commit, so reads stay close to the speed of one file (0 turns it off)."""
    actor: str | None = None
    """Who is acting, when ``--author`` is not given."""
    audit_seal_events: int = 10_000
    """Unsealed audit events are sealed into a Parquet segment once this many accumulate (0: only
    on ``registry audit seal``)."""
    api_max_upload_bytes: int = 1 << 30
    """The largest commit body the HTTP API accepts (413 above it)."""


@dataclass(frozen=True)
class RegistryPaths:
    """Where one registry home keeps its parts."""

    home: Path
    database_url: str
    storage_url: str

    @property
    def cache_dir(self) -> Path:
        """Derived, rebuildable data (key indexes); safe to delete."""
        return self.home / "cache"

    @classmethod
    def for_home(cls, home: Path, settings: Settings | None = None) -> RegistryPaths:
        """Resolve the catalog and store locations of ``home`` (environment overrides win)."""
        settings = settings or Settings()
        home = home.resolve()
        database_url = settings.database_url or f"sqlite:///{home / 'catalog.db'}"
        storage_url = settings.storage_url or (home / "objects").as_uri()
        return cls(home=home, database_url=database_url, storage_url=storage_url)


def find_home(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """Locate an existing registry home (``--home``, ``REGISTRY_HOME``, then walking up).

    Raises:
        HomeNotFound: nothing was given and no ``.registry`` folder is above ``start``.
    """
    given = explicit if explicit is not None else Settings().home
    if given is not None:
        path = Path(given).expanduser()
        if not (path / "registry.json").is_file():
            raise HomeNotFound(f"{path} is not a registry home; run `registry init {path}` to create one")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if (candidate / "registry.json").is_file():
            return candidate
    raise HomeNotFound(
        "no registry home found here or in any parent folder; run `registry init` to create one "
        "(or pass --home / set REGISTRY_HOME)"
    )
