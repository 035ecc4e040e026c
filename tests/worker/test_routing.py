"""worker.delivery_plan's routing: each DICOM destination receives the kinds it asks for, and "return to sender"
sends a study's results to the configured destination of the AE title that sent it, and to no one else."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from config.outputs import Destination
from config.settings import Settings
from db import jobs
from db.engine import SessionFactory
from db.models import JobState
from tests.helpers.peers import received, storescp
from tests.helpers.pipeline import analyse_and_deliver, context_for, record

SR, SC, GSPS = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.11.1"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"


def destination(name: str, port: int, ae_title: str = "PACS", **routing: object) -> Destination:
    return Destination(name=name, ae_title=ae_title, host="127.0.0.1", port=port, **routing)  # type: ignore[arg-type]


def test_each_destination_receives_exactly_its_kinds(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "viewer") as viewer, storescp(tmp_path / "archive") as archive:
        settings = Settings(
            data_dir=tmp_path / "var",
            destinations=[
                destination("legacy-viewer", viewer, kinds=["SC"]),
                destination("ohif", archive, kinds=["SR", "SEG"]),
            ],
        )
        job_id = record(session_factory, settings, rg1)
        assert analyse_and_deliver(context_for(settings, session_factory), job_id) is JobState.DELIVERED
        at_viewer = Counter(str(ds.SOPClassUID) for ds in received(tmp_path / "viewer"))
        at_archive = Counter(str(ds.SOPClassUID) for ds in received(tmp_path / "archive"))
    assert at_viewer == Counter({SC: 1})
    assert at_archive == Counter({SR: 1, SEG: 1})


def test_no_segmentation_is_made_when_no_destination_asks_for_one(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as pacs:
        settings = Settings(data_dir=tmp_path / "var", destinations=[destination("pacs", pacs)])
        job_id = record(session_factory, settings, rg1)
        assert analyse_and_deliver(context_for(settings, session_factory), job_id) is JobState.DELIVERED
        at_pacs = Counter(str(ds.SOPClassUID) for ds in received(tmp_path / "pacs"))
    assert at_pacs == Counter({SR: 1, SC: 1, GSPS: 1}), "the default kinds: today's three objects"
    assert not list((tmp_path / "var").rglob("SEG")), "no SEG made for nobody"


def test_results_go_back_to_the_sender_only(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    with storescp(tmp_path / "ward") as ward, storescp(tmp_path / "er") as er:
        settings = Settings(
            data_dir=tmp_path / "var",
            destinations=[
                destination("ward-dr", ward, "WARD_DR", return_to_sender=True),
                destination("er-dr", er, "ER_DR", return_to_sender=True),
            ],
        )
        context = context_for(settings, session_factory)
        from_ward = record(session_factory, settings, rg1, calling_ae="WARD_DR")
        assert analyse_and_deliver(context, from_ward) is JobState.DELIVERED
        assert len(received(tmp_path / "ward")) == 3 and received(tmp_path / "er") == []


def test_a_study_from_an_unconfigured_sender_goes_nowhere(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "ward") as ward:
        settings = Settings(
            data_dir=tmp_path / "var", destinations=[destination("ward-dr", ward, "WARD_DR", return_to_sender=True)]
        )
        job_id = record(session_factory, settings, rg1, calling_ae="STRANGER")
        assert analyse_and_deliver(context_for(settings, session_factory), job_id) is JobState.COMPLETED
        assert received(tmp_path / "ward") == [], "never to a peer the node was not configured for"
    with session_factory() as s:
        (_, detail) = jobs.job_events(s, job_id)[-1]
    assert detail == "no destination for this result"
