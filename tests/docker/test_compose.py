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


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    require_tool("docker-compose")
    result = subprocess.run(
        ["docker-compose", "-f", str(DOCKER / "compose.yml"), "--env-file", str(DOCKER / ".env.example"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


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
