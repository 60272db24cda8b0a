"""New SQLite homes on demand, one per hypothesis example, each with one dataset (closed at the end)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from registry import Registry


def fresh_registries(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, name: str,
                     key: str) -> Iterator[Callable[..., Registry]]:
    """Yield ``make(max_layers=None)``: a new home with dataset ``name`` keyed by ``key``, opened (the
    environment naming another home, catalog or store cleared first)."""
    for var in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "REGISTRY_MAX_LAYERS"):
        monkeypatch.delenv(var, raising=False)
    opened: list[Registry] = []

    def make(max_layers: int | None = None) -> Registry:
        if max_layers is not None:
            monkeypatch.setenv("REGISTRY_MAX_LAYERS", str(max_layers))
        home = tmp_path_factory.mktemp("fresh") / "home"
        Registry.init(home).close()
        reg = Registry.open(home)
        opened.append(reg)
        reg.create_dataset(name, key)
        return reg

    yield make
    for reg in opened:
        reg.close()
