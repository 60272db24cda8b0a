"""The distribution installs what it needs: every package, and the alembic migrations."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from tests.support.paths import ROOT


def test_every_registry_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "registry").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_every_data_folder_is_a_listed_package() -> None:
    """A folder of package data that is not listed makes setuptools warn "Package would be ignored"."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "registry").rglob("*")
               if p.is_file() and p.suffix in (".json", ".js", ".css", ".html") and "__pycache__" not in p.parts}
    assert folders <= listed, f"add to [tool.setuptools] packages and package-data: {sorted(folders - listed)}"


def test_installed_wheel_finds_its_migrations(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(ROOT)], check=True, capture_output=True, text=True)
    assert "would be ignored" not in build.stdout + build.stderr
    target = tmp_path / "site"
    wheel = next(wheels.glob("*.whl"))
    assert wheel.name.startswith("dataset_ledger-"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    static = {f"registry/{p.relative_to(ROOT / 'registry').as_posix()}" for p in (ROOT / "registry" / "ui" / "static")
              .rglob("*") if p.is_file()}
    assert static and static <= names, sorted(static - names)
    assert "registry/lineage/schemas/RegistryChangeSummaryFacet.json" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("REGISTRY_DATABASE_URL", None)
    code = ("import registry, registry.db as db; from registry import Registry; "
            "r = Registry.init('home'); print(registry.__file__); print(db.MIGRATIONS_DIR)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    module_file, migrations = proc.stdout.split()
    assert module_file.startswith(str(target))
    assert Path(migrations) == target / "registry_migrations"
    assert (tmp_path / "home" / "catalog.db").is_file()


def test_schema_head_constant_matches_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from registry.db import SCHEMA_HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() == SCHEMA_HEAD


def test_one_distribution_name_everywhere() -> None:
    """The name on the package index is ours (``dataset-registry`` is someone else's project there)."""
    from registry import DISTRIBUTION, __version__
    from registry.lineage.events import PRODUCER

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "dataset-ledger"
    assert f"https://pypi.org/project/{DISTRIBUTION}/{__version__}" == PRODUCER
    texts = [ROOT / "README.md", ROOT / "Dockerfile", ROOT / "docker-compose.yml", *(ROOT / "docs").glob("*.md"),
             *(ROOT / "registry").rglob("*.py"), *(ROOT / "registry").rglob("*.json"),
             *(ROOT / "clients").rglob("*.md")]
    stale = [str(p.relative_to(ROOT)) for p in texts if "dataset-registry" in p.read_text()]
    assert stale == []
    installs = [line for p in texts if p.suffix == ".md" for line in p.read_text().splitlines()
                if "pip install '" in line and "[" in line]
    assert installs and all(f"pip install '{DISTRIBUTION}[" in line for line in installs), installs
