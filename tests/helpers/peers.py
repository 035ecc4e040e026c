"""Real peers for tests: DCMTK storescp/storescu, dciodvfy, PixelMed's SR validator. No mocks."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pydicom
import pytest

PIXELMED_JAR = Path("/usr/share/java/pixelmed.jar")


PORTS_PER_WORKER = 1000
FIRST_PORT = 20000
WORKER_RANGES = 12
"""Each pytest-xdist worker takes ports from a range of its own (20000-31999 for twelve), below Linux's ephemeral ports
(32768 up): a port the kernel hands out for ``bind(0)`` may be handed to another worker's test before this one's server
has bound it. A thirteenth worker would share the first's range."""
_next_port: list[int] = []


def worker_index() -> int:
    """0 for ``gw0`` (and for a run without workers), 1 for ``gw1``, …"""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def free_port() -> int:
    """A port nobody listens on now, from this worker's range, in turn: one another test just closed is taken last, and
    one still in TIME_WAIT is passed over (the bind, without SO_REUSEADDR, fails)."""
    first = FIRST_PORT + (worker_index() % WORKER_RANGES) * PORTS_PER_WORKER
    if not _next_port:
        _next_port.append(first + os.getpid() % PORTS_PER_WORKER)
    for _ in range(PORTS_PER_WORKER):
        port = first + (_next_port[0] - first) % PORTS_PER_WORKER
        _next_port[0] = port + 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + PORTS_PER_WORKER - 1}")


def unavailable(reason: str) -> NoReturn:
    """A peer this test needs is missing: skip on a developer's machine, fail under CI, where .ci/run installs or
    starts every peer, so a broken installation can never pass as skipped tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, under CI", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (.ci/run installs it)")
    return path


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")


ANSWERING_AT_ONCE = {**os.environ, "TCP_NODELAY": "1"}
"""The environment of a DCMTK tool whose socket must send at once (DCMTK reads ``TCP_NODELAY``)."""


@contextmanager
def storescp(directory: Path, ae_title: str = "PACS", port: int | None = None, *extra: str) -> Iterator[int]:
    """A DCMTK storescp accepting every transfer syntax, writing into ``directory``; yields its port.

    It answers at once (``TCP_NODELAY=1``): Debian's DCMTK otherwise leaves Nagle's algorithm on, and each C-STORE
    response then waits about 40 ms for our delayed ACK (50 ms a store instead of 7.5, measured), a cost of that PACS's
    set-up that the tests and benches would charge to our node."""
    require_tool("storescp")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["storescp", "-aet", ae_title, "+xa", *extra, "-od", str(directory), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ANSWERING_AT_ONCE,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def storescu(path: Path, port: int, called_ae: str = "CXR_AI", *extra: str) -> subprocess.CompletedProcess[str]:
    require_tool("storescu")
    return subprocess.run(
        ["storescu", "-aec", called_ae, *extra, "127.0.0.1", str(port), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def received(directory: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(directory.iterdir()) if p.is_file()]


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's error lines (warnings inherited from the source are not errors)."""
    require_tool("dciodvfy")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def pixelmed_sr_errors(path: Path) -> list[str]:
    """PixelMed DicomSRValidator's error lines; the XPath limits of recent JREs would stop it early."""
    require_tool("java")
    if not PIXELMED_JAR.is_file():
        unavailable("PixelMed is not installed (Debian libpixelmed-java; .ci/run installs it)")
    result = subprocess.run(
        [
            "java",
            "-Djdk.xml.xpathExprOpLimit=0",
            "-Djdk.xml.xpathExprGrpLimit=0",
            "-Djdk.xml.xpathTotalOpLimit=0",
            "-cp",
            str(PIXELMED_JAR),
            "com.pixelmed.validate.DicomSRValidator",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert "validation complete" in output, output[-2000:]
    errors = [line for line in output.splitlines() if line.lower().startswith("error")]
    return [error for error in errors if not _pixelmed_single_region_defect(path, error)]


_WITHIN = re.compile(
    r"^Error: Template 1410 PlanarROIMeasurements/.*\[Row [57]\] .*: within ([\d.]+): .*"
    r"Missing conditional content item$"
)


def _is_segment_reference(item: pydicom.Dataset) -> bool:
    return item.ValueType == "IMAGE" and item.ConceptNameCodeSequence[0].CodeValue == "121214"


def _pixelmed_single_region_defect(path: Path, error: str) -> bool:
    """PixelMed's compiled TID 1500 rule decides for *all* the groups at once: it includes TID 1410 when
    ``count(Measurement Group/Image Region) = 1`` or when any group has a Referenced Segmentation Frame (121214), then
    checks every group, TID 1501 ones too, for a region or a segment. So a report with exactly one located finding, or
    with a finding's segment group, and any image-level group (the overall result always is one) gets two false errors
    per TID 1501 group (rows 5 and 7 of TID 1410 "missing").

    Only that pattern is dismissed: the flagged group has neither a region nor a segment (it is a TID 1501 group, which
    has none by definition), and its container has exactly one group with a region, or a group with a segment. Any
    other missing item still fails.
    """
    match = _WITHIN.match(error)
    if match is None:
        return False
    indices = [int(i) - 1 for i in match.group(1).split(".")[1:]]
    items = pydicom.dcmread(path).ContentSequence
    for index in indices[:-1]:
        items = items[index].ContentSequence
    with_region = [
        group for group in items if any(item.ValueType == "SCOORD" for item in group.get("ContentSequence", []))
    ]
    with_segment = [group for group in items if any(map(_is_segment_reference, group.get("ContentSequence", [])))]
    flagged = items[indices[-1]]
    if flagged in with_region or flagged in with_segment:
        return False
    return len(with_region) == 1 or bool(with_segment)
