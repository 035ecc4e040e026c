"""dashboard.search and the study page on a real node: search by Study UID and by Accession Number (kept only as a
keyed digest), and the result objects' UIDs and numbers as the PACS received them."""

from __future__ import annotations

import re

import pytest

from db.models import JobState
from tests.helpers.dashboard import OPERATOR, PHI_MARKERS, VIEWER, Site, logged_in, page_csrf
from tests.helpers.node import wait_for_files

pytestmark = pytest.mark.integration


def found_studies(html: str) -> list[int]:
    return sorted({int(n) for n in re.findall(r'href="/studies/(\d+)"', html)})


def test_a_study_is_found_by_its_uid_and_by_its_accession_never_stored_in_clear(site: Site) -> None:
    viewer = logged_in(site.node.dashboard_url, VIEWER)
    for ds in site.studies:
        (job,) = site.node.jobs(str(ds.StudyInstanceUID))
        wanted = job.study_id
        by_uid = viewer.get("/studies", params={"study": str(ds.StudyInstanceUID)}, headers={"Accept": "text/html"})
        by_accession = viewer.get("/studies", params={"study": str(ds.AccessionNumber)})
        assert found_studies(by_uid.text) == [wanted]
        assert found_studies(by_accession.text) == [wanted]
        api = viewer.get("/api/jobs", params={"study": str(ds.AccessionNumber)}).json()
        assert [row["study_id"] for row in api["rows"]] == [wanted]
    assert found_studies(viewer.get("/studies", params={"study": "ACC"}).text) == []
    by_ae = viewer.get("/api/jobs", params={"calling_ae": "STORESCU"}).json()
    assert by_ae["total"] == len(site.studies)
    assert viewer.get("/api/jobs", params={"calling_ae": "ELSEWHERE"}).json()["total"] == 0
    stored = b"".join(path.read_bytes() for path in site.node.config.parent.glob("var/cxr.sqlite*"))
    assert stored, "the node's SQLite files"
    for ds in site.studies:
        assert str(ds.AccessionNumber).encode() not in stored
    assert PHI_MARKERS[2].encode() not in stored


def test_the_study_page_lists_the_result_uids_and_numbers_the_pacs_received(site: Site) -> None:
    ds = site.studies[1]
    (job,) = site.node.jobs(str(ds.StudyInstanceUID))
    site.start_pacs()
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    token = page_csrf(operator, f"/studies/{job.study_id}")
    assert operator.post(f"/api/jobs/{job.job_id}/requeue", headers={"X-CSRF-Token": token}).status_code == 200
    site.wait_for_states({JobState.DELIVERED}, 1)
    received = [r for r in wait_for_files(site.pacs_dir, 3, timeout_s=60) if r.StudyInstanceUID == ds.StudyInstanceUID]
    assert len(received) == 3
    page = operator.get(f"/studies/{job.study_id}", headers={"Accept": "text/html"}).text
    table = page[page.index(f'id="results-{job.job_id}"') :]
    table = table[: table.index("</table>")]
    for obj in received:
        row = re.search(rf"<td class=\"uid\">{re.escape(str(obj.SOPInstanceUID))}</td>(.*?)</tr>", table)
        assert row is not None, f"{obj.Modality} {obj.SOPInstanceUID} not listed"
        numbers = re.findall(r'<td class="num">(\d*)</td>', row.group(1))
        assert numbers == [str(obj.SeriesNumber), str(obj.InstanceNumber)], (obj.Modality, numbers)
