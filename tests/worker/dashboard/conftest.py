"""One real node for the dashboard tests: ``cxr serve`` with three studies whose results could not be delivered.

The destination is down and allows no retry, so every job ends DEAD_LETTER; ``start_pacs`` brings a DCMTK storescp up
on the destination's port for the tests that requeue. The first study carries PHI markers in its identifying
attributes, so tests can prove no page shows them unless an operator reveals them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from db.engine import SessionFactory, make_engine, make_session_factory
from db.models import JobState
from tests.helpers.dashboard import OPERATOR, VIEWER, users_toml
from tests.helpers.node import RunningNode, cxr_serve
from tests.helpers.peers import free_port, storescp, storescu, wait_for_port

PHI_MARKERS = ("ZZMARKER^Patient", "ZZMARKER-ID-4711", "ZZMARKACC99")
UPLOAD_LIMIT = 16 * 1024 * 1024
DASHBOARD_TOML = f"echo_interval_s = 1.0\nupload_max_bytes = {UPLOAD_LIMIT}\n" + users_toml(VIEWER, OPERATOR)


@dataclass
class Site:
    node: RunningNode
    pacs_port: int
    pacs_dir: Path
    sessions: SessionFactory
    studies: list[pydicom.Dataset]
    stack: ExitStack = field(default_factory=ExitStack)
    pacs_started: bool = False

    def start_pacs(self) -> None:
        """The destination comes up (and stays up until the package's tests end)."""
        if not self.pacs_started:
            self.stack.enter_context(storescp(self.pacs_dir, "PACS", self.pacs_port))
            self.pacs_started = True

    def wait_for_states(self, wanted: set[JobState], count: int, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [j.state for j in self.node.jobs()]
            if sum(s in wanted for s in states) >= count:
                return
            time.sleep(0.3)
        raise TimeoutError(f"wanted {count} jobs in {wanted}, have {[j.state for j in self.node.jobs()]}")


def marked_studies(rg1: Path, directory: Path) -> list[Path]:
    """RG1 with PHI markers, then two copies with fresh UIDs (separate studies) and ordinary identities."""
    source = pydicom.dcmread(rg1)
    paths = []
    for index in range(3):
        ds = copy.deepcopy(source)
        if index == 0:
            ds.PatientName, ds.PatientID, ds.AccessionNumber = PHI_MARKERS
        else:
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.PatientName, ds.PatientID, ds.AccessionNumber = f"Other^{index}", f"OTHER{index}", f"ACC{index}"
        path = directory / f"study{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, rg1: Path) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("dashboard")
    pacs_port = free_port()  # nothing listens yet: every delivery fails and, with no retry allowed, dead-letters
    extra = "[worker]\ndelivery_max_retries = 0\n"
    with cxr_serve(workdir / "node", pacs_port, extra_toml=extra, dashboard_toml=DASHBOARD_TOML) as node:
        engine = make_engine(node.database_url)
        files = marked_studies(rg1, workdir)
        for path in files:
            result = storescu(path, node.port)
            assert result.returncode == 0, result.stderr
        site = Site(node, pacs_port, workdir / "pacs", make_session_factory(engine), [pydicom.dcmread(p) for p in files])
        site.wait_for_states({JobState.DEAD_LETTER}, 3)
        wait_for_port(node.dashboard_port)
        with site.stack:
            yield site
        engine.dispose()
