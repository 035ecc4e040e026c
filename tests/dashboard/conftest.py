"""One real node for the dashboard tests: ``cxr serve`` with three studies whose results could not be delivered.

The destination is down and allows no retry, so every job ends DEAD_LETTER; ``start_pacs`` brings a DCMTK storescp up
on the destination's port for the tests that requeue. The first study carries PHI markers in its identifying
attributes, so tests can prove no page shows them unless an operator reveals them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from db.engine import make_engine, make_session_factory
from db.models import JobState
from tests.helpers.dashboard import OPERATOR, PHI_MARKERS, UPLOAD_LIMIT, VIEWER, Site, users_toml
from tests.helpers.node import cxr_serve
from tests.helpers.peers import free_port, storescu, wait_for_port

DASHBOARD_TOML = f"echo_interval_s = 1.0\nupload_max_bytes = {UPLOAD_LIMIT}\n" + users_toml(VIEWER, OPERATOR)


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
        site = Site(
            node, pacs_port, workdir / "pacs", make_session_factory(engine), [pydicom.dcmread(p) for p in files]
        )
        site.wait_for_states({JobState.DEAD_LETTER}, 3)
        wait_for_port(node.dashboard_port)
        with site.stack:
            yield site
        engine.dispose()
