"""docker-compose.yml, the Dockerfile and docs/deploy.md, checked by reading them (Docker does not run here).

Each rule is a function returning the problems it finds, so the tests can show on a broken copy of the
file that the rule would catch the mistake, not only that today's file passes.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic_settings import BaseSettings

import registry
from registry.cli.main import cli
from tests.support.paths import ROOT

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Compose:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def known_registry_variables() -> set[str]:
    """Every ``REGISTRY_*`` variable the code honours: fields of its pydantic settings classes (any
    module under registry/ that defines one) and names it reads from ``os.environ`` literally."""
    names: set[str] = set()
    for module in pkgutil.walk_packages(registry.__path__, "registry."):
        path = Path(module.module_finder.path) / (module.name.rsplit(".", 1)[-1] + ".py")  # type: ignore[union-attr]
        if not path.is_file():
            continue
        source = path.read_text()
        names.update(re.findall(r"[\"'](REGISTRY_[A-Z0-9_]*[A-Z0-9])[\"']", source))
        if "BaseSettings" not in source:
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings:
                prefix = str(value.model_config.get("env_prefix", ""))
                if prefix.startswith("REGISTRY_"):
                    names.update(prefix + field.upper() for field in value.model_fields)
    return names


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``{target: condition}`` (the short list form means ``service_started``)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def one_shot(compose: Compose) -> set[str]:
    """Jobs, not servers: services something waits on to *complete*, or never restarted."""
    services = compose["services"]
    waited = {target for svc in services.values() for target, condition in depends_on(svc).items()
              if condition == "service_completed_successfully"}
    return waited | {name for name, svc in services.items() if svc.get("restart") == "no"}


def command_words(value: Any) -> list[str]:
    return [str(w) for w in value] if isinstance(value, list) else shlex.split(str(value or ""))


def cli_command_problems(words: list[str]) -> list[str]:
    """Problems running ``words`` as a ``registry`` CLI invocation (parsed by the real click command)."""
    if not words or words[0] != "registry":
        return [f"{words} does not run the registry CLI"]
    group: click.Command = cli
    rest = words[1:]
    while isinstance(group, click.Group) and rest and rest[0] in group.commands:
        group, rest = group.commands[rest[0]], rest[1:]
    if group is cli:
        return [f"{words}: no such registry command {rest[:1]}"]
    try:
        group.make_context(group.name or "", list(rest))
    except click.ClickException as exc:
        return [f"{words}: {exc.format_message()}"]
    return []


def variable_problems(compose: Compose, known: set[str]) -> list[str]:
    return [f"{name}: {var} is not a registry setting" for name, svc in compose["services"].items()
            for var in environment(svc) if var.startswith("REGISTRY_") and var not in known]


def dependency_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    return [f"{name} depends on undefined {target}" for name, svc in services.items()
            for target in depends_on(svc) if target not in services]


def healthcheck_problems(compose: Compose) -> list[str]:
    jobs = one_shot(compose)
    return [f"{name} runs for long but has no healthcheck" for name, svc in compose["services"].items()
            if name not in jobs and not (svc.get("healthcheck") or {}).get("test")]


def api_problems(compose: Compose) -> list[str]:
    """The API serves on all interfaces, checks /readyz, and waits for the migration, which migrates."""
    services = compose["services"]
    api, problems = services.get("registry-api"), []
    if api is None:
        return ["no registry-api service"]
    words = command_words(api.get("command"))
    problems += cli_command_problems(words)
    if words[1:2] != ["serve"] or "0.0.0.0" not in words:
        problems.append("registry-api does not run `registry serve --host 0.0.0.0`")
    if "/readyz" not in json.dumps(api.get("healthcheck")):
        problems.append("registry-api's healthcheck does not ask /readyz")
    migrations = [t for t, c in depends_on(api).items() if c == "service_completed_successfully"
                  and command_words(services.get(t, {}).get("command"))[1:2] in (["init"], ["db"])]
    if not migrations:
        problems.append("registry-api does not wait for a completed migration (registry init / db upgrade)")
    for target in migrations:
        problems += cli_command_problems(command_words(services[target]["command"]))
    return problems


def lineage_problems(compose: Compose) -> list[str]:
    """OPENLINEAGE_URL points at a defined service on the port it listens on."""
    services, problems = compose["services"], []
    urls = {environment(svc).get("OPENLINEAGE_URL") for svc in services.values()} - {None}
    if not urls:
        return ["nothing sends OpenLineage events (OPENLINEAGE_URL unset)"]
    for url in urls:
        match = re.fullmatch(r"http://([\w-]+):(\d+)", str(url))
        host, port = (match.group(1), match.group(2)) if match else (None, None)
        if host not in services or environment(services[host]).get("MARQUEZ_PORT") != port:
            problems.append(f"OPENLINEAGE_URL {url} is not a Marquez service's port")
    return problems


def documented_services() -> list[str]:
    """The services the table under docs/deploy.md's "## Services" names (first column, in backquotes)."""
    section = (ROOT / "docs" / "deploy.md").read_text().split("\n## Services\n", 1)[1]
    table = section.strip().split("\n\n", 1)[0]
    return re.findall(r"^\| `([\w-]+)` \|", table, flags=re.MULTILINE)


def test_compose_is_consistent(compose: Compose) -> None:
    assert variable_problems(compose, known_registry_variables()) == []
    assert dependency_problems(compose) == []
    assert healthcheck_problems(compose) == []
    assert api_problems(compose) == []
    assert lineage_problems(compose) == []


def test_documented_services_are_defined_and_vice_versa(compose: Compose) -> None:
    documented = documented_services()
    assert {"registry-api", "registry-migrate", "postgres", "minio", "minio-init", "marquez", "marquez-web",
            "marquez-db", "lakefs"} <= set(documented)
    assert sorted(documented) == sorted(compose["services"])


def test_team_setup(compose: Compose) -> None:
    services = compose["services"]
    env = environment(services["registry-api"])
    assert env["REGISTRY_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:" in env["REGISTRY_DATABASE_URL"]
    assert env["REGISTRY_STORAGE_URL"].startswith("s3://")
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(env)
    bucket = env["REGISTRY_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in " ".join(command_words(services["minio-init"]["command"]))
    assert services["lakefs"]["profiles"] == ["lakefs"]
    assert environment(services["marquez"])["POSTGRES_HOST"] == "marquez-db"
    assert environment(services["marquez-web"])["MARQUEZ_HOST"] == "marquez"
    assert "--workers" in command_words(services["registry-api"]["command"])
    assert services["registry-api"]["build"] == "."


def test_dockerfile_runs_a_real_command() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert re.search(r'pip install "\.\[\$\{REGISTRY_EXTRAS\}\]"', text) and "ARG REGISTRY_EXTRAS=postgres" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    assert cmd, "the Dockerfile has no exec-form CMD"
    words = json.loads(cmd.group(1))
    assert cli_command_problems(words) == []
    assert words[:2] == ["registry", "serve"]
    assert "/readyz" in text  # its HEALTHCHECK
    for problem in image_source_problems(text, (ROOT / ".dockerignore").read_text()):
        pytest.fail(problem)


def package_roots() -> set[str]:
    """The folders ``pip install .`` needs: the top package of every package pyproject.toml lists."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})
    return {mapped.get(p.split(".")[0], p.split(".")[0]) for p in setuptools["packages"]}


def image_source_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """What ``pip install .`` in the image would miss: a needed path not COPYed, or excluded by .dockerignore."""
    copied = [c for line in dockerfile.splitlines() if line.startswith("COPY ") for c in line.split()[1:-1]]
    ignored = [line.strip().rstrip("/") for line in dockerignore.splitlines()
               if line.strip() and not line.startswith(("#", "!"))]
    problems = []
    for needed in sorted(package_roots() | {"pyproject.toml", "README.md"}):
        if not any(needed == c or needed.startswith(c.rstrip("/") + "/") for c in copied):
            problems.append(f"the Dockerfile does not COPY {needed}")
        if any(needed == i or needed.startswith(i + "/") for i in ignored):
            problems.append(f".dockerignore excludes {needed}")
    return problems


# The rules catch mistakes: each broken copy below must be reported.

def _broken(compose: Compose) -> Compose:
    return copy.deepcopy(compose)


def test_rules_catch_mistakes(compose: Compose) -> None:
    known = known_registry_variables()
    assert {"REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "REGISTRY_HOME", "REGISTRY_LINEAGE_NAMESPACE"} <= known
    assert "REGISTRY_DATABASE_URI" not in known

    typo = _broken(compose)
    typo["services"]["registry-api"]["environment"]["REGISTRY_DATABASE_URI"] = "x"
    assert "registry-api: REGISTRY_DATABASE_URI is not a registry setting" in variable_problems(typo, known)

    dangling = _broken(compose)
    dangling["services"]["registry-api"]["depends_on"]["redis"] = {"condition": "service_healthy"}
    assert dependency_problems(dangling) == ["registry-api depends on undefined redis"]

    unchecked = _broken(compose)
    del unchecked["services"]["minio"]["healthcheck"]
    assert healthcheck_problems(unchecked) == ["minio runs for long but has no healthcheck"]

    no_wait = _broken(compose)
    no_wait["services"]["registry-api"]["depends_on"]["registry-migrate"] = {"condition": "service_started"}
    assert any("does not wait" in p for p in api_problems(no_wait))

    bad_command = _broken(compose)
    bad_command["services"]["registry-api"]["command"] = ["registry", "serve", "--wrokers", "4"]
    assert any("--wrokers" in p for p in api_problems(bad_command))
    assert cli_command_problems(["registry", "serv"]) and cli_command_problems(["uvicorn", "app"])
    assert cli_command_problems(["registry", "db", "upgrade"]) == []

    liveness = _broken(compose)
    liveness["services"]["registry-api"]["healthcheck"]["test"] = ["CMD", "true"]
    assert api_problems(liveness) == ["registry-api's healthcheck does not ask /readyz"]

    wrong_port = _broken(compose)
    wrong_port["services"]["registry-api"]["environment"]["OPENLINEAGE_URL"] = "http://marquez:3000"  # shared
    assert lineage_problems(wrong_port) == ["OPENLINEAGE_URL http://marquez:3000 is not a Marquez service's port"]


def test_image_rule_catches_a_missing_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert image_source_problems(dockerfile, "") == []
    assert "registry" in package_roots() and "clients/python/registry_client" in package_roots()
    without_client = "\n".join(ln for ln in dockerfile.splitlines() if "registry_client" not in ln)
    assert image_source_problems(without_client, "") == ["the Dockerfile does not COPY clients/python/registry_client"]
    assert image_source_problems(dockerfile, "clients\n") == [".dockerignore excludes clients/python/registry_client"]
