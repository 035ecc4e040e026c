"""worker.retraction and worker.encode.kos: a job's results withdrawn where they went. Our IOCM rejection KOS reaches
the DICOM destination, references exactly our SR, SC and GSPS and passes dciodvfy; the RIS gets an ORU that deletes
the observations, the EHR the DiagnosticReport as entered-in-error; asked twice, everything goes once; what was still
waiting is never sent."""

from __future__ import annotations

from pathlib import Path

import pydicom
from fhir.resources.R4B.bundle import Bundle
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlalchemy import select

from config.outputs import FhirEndpoint, Hl7Endpoint
from db import audit, deliveries, jobs
from db.engine import SessionFactory
from db.models import AuditKind, Delivery, DeliveryState, JobState, RejectionReason, ResultKind, ResultObject
from tests.helpers.clinical_peers import http_peer, mllp_peer
from tests.helpers.peers import dciodvfy_errors, received, storescp
from tests.helpers.pipeline import context_for, record, with_pacs
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result
from worker.retraction import retract_job

KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


def referenced_uids(kos: pydicom.Dataset) -> set[str]:
    return {
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in kos.ContentSequence
        if item.ValueType in ("IMAGE", "COMPOSITE")
    }


def test_a_retraction_reaches_every_destination_once(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port, mllp_peer() as ris, http_peer() as ehr:
        settings = with_pacs(tmp_path, port).model_copy(
            update={
                "hl7": [Hl7Endpoint(name="ris", host="127.0.0.1", port=ris.port, timeout_s=5)],
                "fhir": [FhirEndpoint(name="ehr", url=ehr.url, timeout_s=5)],
            }
        )
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        for delivery_id in analyze_job(context, job_id).delivery_ids:
            assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        ours = {ds.SOPInstanceUID for ds in received(tmp_path / "pacs")}
        planned = retract_job(settings, session_factory, job_id, RejectionReason.QUALITY, "model withdrawn", "otto")
        assert len(planned) == 3, "the KOS to the PACS, an ORU to the RIS, a Bundle to the EHR"
        for delivery_id in planned:
            assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        assert retract_job(settings, session_factory, job_id, RejectionReason.QUALITY, "again", "otto") == []
        at_pacs = received(tmp_path / "pacs")
        kos_files = [p for p in (tmp_path / "pacs").iterdir() if pydicom.dcmread(p).SOPClassUID == KOS_CLASS]
    (kos,) = [ds for ds in at_pacs if ds.SOPClassUID == KOS_CLASS]
    assert len(at_pacs) == 4, "once, though asked twice"
    assert referenced_uids(kos) == ours and len(ours) == 3, "exactly our SR, SC and GSPS"
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113001"
    assert kos.StudyInstanceUID == pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID
    assert dciodvfy_errors(kos_files[0]) == []
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.RETRACTED
        trail = audit.audit_trail(s, kinds=[AuditKind.OPERATOR_ACTION])
    assert [(a.actor, a.detail) for a in trail] == [("otto", f"retract job {job_id}: model withdrawn")]

    first, correction = ris.received
    parsed = parse_message(correction.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()
    order = parsed.oru_r01_patient_result.oru_r01_order_observation
    assert order.obr.obr_25.to_er7() == "C", "a correction"
    assert {group.obx.obx_11.to_er7() for group in order.oru_r01_observation} == {"D"}, "every observation deleted"
    assert first.split("\r")[0].split("|")[9] != correction.split("\r")[0].split("|")[9], "its own MSH-10"
    _, voided = ehr.received
    bundle = Bundle.model_validate_json(voided[1])
    (report,) = [e for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport"]
    assert report.resource.status == "entered-in-error" and report.request.method == "PUT"


def test_results_still_waiting_are_never_sent_after_a_retraction(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        delivery_ids = analyze_job(context, job_id).delivery_ids
        with session_factory() as s:
            (sr_delivery,) = [d for d in delivery_ids if deliveries.delivery_work(s, d).kind is ResultKind.SR]
        waiting = [d for d in delivery_ids if d != sr_delivery]
        assert deliver_result(context, sr_delivery) is DeliveryOutcome.SENT
        (kos_delivery,) = retract_job(settings, session_factory, job_id, RejectionReason.QUALITY, "wrong model")
        for delivery_id in waiting:
            assert deliver_result(context, delivery_id) is DeliveryOutcome.DEAD_LETTER
        assert deliver_result(context, kos_delivery) is DeliveryOutcome.SENT
        classes = sorted(ds.SOPClassUID for ds in received(tmp_path / "pacs"))
    assert classes == sorted(["1.2.840.10008.5.1.4.1.1.88.34", KOS_CLASS]), "the SR and the note that withdraws it"
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.RETRACTED, "a withdrawn delivery does not dead-letter the job"
        errors = s.scalars(select(Delivery.last_error).where(Delivery.state == DeliveryState.DEAD_LETTER)).all()
        kinds = s.scalars(select(ResultObject.kind).order_by(ResultObject.id)).all()
    assert errors and all("withdrawn before it was sent" in (e or "") for e in errors)
    assert kinds[-1] is ResultKind.KOS


def test_our_rejection_note_withdraws_the_segmentation_too(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        (pacs,) = settings.destinations
        settings = settings.model_copy(
            update={"destinations": [pacs.model_copy(update={"kinds": ["SR", "SC", "GSPS", "SEG", "KOS"]})]}
        )
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        for delivery_id in analyze_job(context, job_id).delivery_ids:
            assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        ours = {ds.SOPInstanceUID for ds in received(tmp_path / "pacs")}
        for delivery_id in retract_job(settings, session_factory, job_id, RejectionReason.QUALITY, "withdrawn", "otto"):
            assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        (kos,) = [ds for ds in received(tmp_path / "pacs") if ds.SOPClassUID == KOS_CLASS]
    assert len(ours) == 4 and referenced_uids(kos) == ours, "the SR, SC, GSPS and SEG"
