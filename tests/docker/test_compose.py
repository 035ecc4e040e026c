"""The compose file, checked by Debian's docker-compose and against our own Settings and CLI (no engine runs here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxr.cli import app
from db.settings import Settings
from tests.helpers.peers import require_tool

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose_config(*profiles: str) -> dict[str, Any]:
    require_tool("docker-compose")
    options = [argument for profile in profiles for argument in ("--profile", profile)]
    result = subprocess.run(
        ["docker-compose", "-f", str(DOCKER / "compose.yml"), "--env-file", str(DOCKER / ".env.example"), *options,
         "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    return compose_config()


def published_hosts(service: dict[str, Any]) -> set[str]:
    """The host addresses a service's ports are published on ("HOST:PUBLISHED:TARGET" or long syntax)."""
    hosts = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            hosts.add(str(port.get("host_ip", "0.0.0.0")))
        else:
            parts = str(port).split(":")
            hosts.add(parts[0] if len(parts) == 3 else "0.0.0.0")
    return hosts


def _settings_keys() -> set[str]:
    keys = set()
    for name, field in Settings.model_fields.items():
        keys.add(name.upper())
        annotation = field.annotation
        for sub in getattr(annotation, "model_fields", {}):
            keys.add(f"{name.upper()}__{sub.upper()}")
    return keys


def test_every_cxr_variable_is_a_settings_key(resolved: dict[str, Any]) -> None:
    known = _settings_keys()
    names = set(re.findall(r"^(CXR_[A-Z_]+)=", (DOCKER / ".env.example").read_text(), re.MULTILINE))
    for service in resolved["services"].values():
        names |= {k for k in service.get("environment", {}) if k.startswith("CXR_")}
    assert names and all(n.removeprefix("CXR_") in known for n in names), sorted(names)


def test_commands_are_cxr_subcommands(resolved: dict[str, Any]) -> None:
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback} | {"db"}
    for name, service in resolved["services"].items():
        if "command" in service and service.get("image", "").startswith("cxr-pacs-worker"):
            assert service["command"][0] in commands, name


def test_redis_keeps_every_message_and_databases_are_not_published(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "ports" not in services["redis"] and "ports" not in services["postgres"]
    assert resolved["networks"]["internal"]["internal"] is True


def test_dockerfile_is_non_root_with_healthcheck_and_pinned_torch() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile and 'ENTRYPOINT ["cxr"]' in dockerfile
    pyproject = (DOCKER.parent / "pyproject.toml").read_text()
    assert '"torch==2.14.1"' in pyproject and '"torchvision==0.29.1"' in pyproject


def test_dashboard_and_flower_are_reachable_from_the_host_only() -> None:
    monitoring = compose_config("monitoring")
    services = monitoring["services"]
    assert published_hosts(services["dashboard"]) == {"127.0.0.1"}
    assert services["dashboard"]["command"] == ["dashboard"]
    assert "/healthz" in " ".join(services["dashboard"]["healthcheck"]["test"])
    assert published_hosts(services["flower"]) == {"127.0.0.1"}
    assert "--basic-auth=admin:change-me" in services["flower"]["command"], "Flower must not run without auth"


def test_flower_is_started_only_with_the_monitoring_profile(resolved: dict[str, Any]) -> None:
    # docker-compose 1.29 lists profiled services in `config`; `up` starts them only with their profile.
    assert resolved["services"]["flower"]["profiles"] == ["monitoring"]
