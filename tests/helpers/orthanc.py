"""Debian's Orthanc as a real PACS: started from a test with its own configuration on free ports, driven over REST."""

from __future__ import annotations

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

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=30) as response:
            return json.loads(response.read())

    def get_bytes(self, path: str) -> tuple[str, bytes]:
        with urllib.request.urlopen(self.url(path), timeout=60) as response:
            return response.headers.get("Content-Type", ""), response.read()

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> Any:
        request = urllib.request.Request(self.url(path), data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())


@contextmanager
def orthanc(workdir: Path, modalities: dict[str, tuple[str, str, int]]) -> Iterator[Orthanc]:
    """An Orthanc with ``modalities`` (name → AE title, host, port) it may push to, on free ports under ``workdir``."""
    require_tool("Orthanc")
    workdir.mkdir(parents=True, exist_ok=True)
    server = Orthanc(http_port=free_port(), dicom_port=free_port())
    config = {
        "Name": "test-pacs",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": server.http_port,
        "DicomPort": server.dicom_port,
        "DicomAet": server.ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": {name: list(value) for name, value in modalities.items()},
        "Plugins": [],
    }
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
