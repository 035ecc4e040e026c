"""Debian's Orthanc as a real PACS: started from a test with its own configuration on free ports, driven over REST."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.peers import free_port, require_tool, wait_for_port


@dataclass(frozen=True)
class Orthanc:
    http_port: int
    dicom_port: int
    ae_title: str = "ORTHANC"
    credentials: tuple[str, str] | None = None
    """HTTP basic auth for the REST API, when the configuration turns authentication on."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def _request(self, path: str, body: bytes | None = None, content_type: str | None = None) -> urllib.request.Request:
        headers = {"Content-Type": content_type} if content_type else {}
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return urllib.request.Request(
            self.url(path), data=body, method="POST" if body is not None else "GET", headers=headers
        )

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self._request(path), timeout=30) as response:
            return json.loads(response.read())

    def get_bytes(self, path: str) -> tuple[str, bytes]:
        with urllib.request.urlopen(self._request(path), timeout=60) as response:
            return response.headers.get("Content-Type", ""), response.read()

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> Any:
        with urllib.request.urlopen(self._request(path, body, content_type), timeout=120) as response:
            return json.loads(response.read())


@contextmanager
def orthanc(
    workdir: Path,
    modalities: dict[str, tuple[str, str, int]],
    base_config: dict[str, Any] | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[Orthanc]:
    """An Orthanc with ``modalities`` (name → AE title, host, port) it may push to, on free ports under ``workdir``.

    ``base_config`` is a configuration to start from (the demo's, say); ports, storage and modalities are set here."""
    require_tool("Orthanc")
    workdir.mkdir(parents=True, exist_ok=True)
    server = Orthanc(http_port=free_port(), dicom_port=free_port(), credentials=credentials)
    config = {
        "Name": "test-pacs",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomAet": server.ae_title,
        **(base_config or {}),
    }
    config.update(
        {
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": server.http_port,
            "DicomPort": server.dicom_port,
            "DicomModalities": {name: list(value) for name, value in modalities.items()},
        }
    )
    (workdir / "orthanc.json").write_text(json.dumps(config))
    with (workdir / "orthanc.log").open("wb") as log:
        process = subprocess.Popen(["Orthanc", str(workdir / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(server.http_port)
        wait_for_port(server.dicom_port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                server.get("/system")
                break
            except OSError:
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
