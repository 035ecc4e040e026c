"""The record step: the objects an analysis made are written and recorded with its findings, the job moves on, and
its deliveries are planned. ``worker.analyze`` calls it; it knows nothing of detectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from db import jobs, results, studies
from db.models import JobState, ResultKind, Urgency
from db.results import FindingRecord, ScoreRecord
from db.studies import InstanceSummary
from db.urgency import set_model, set_urgency
from models.codes import code_for
from models.protocol import Provenance
from worker.context import WorkerContext
from worker.delivery_plan import plan_deliveries, withheld
from worker.encode.bundle import EncodedObject
from worker.encode.inputs import AnalysedImage


@dataclass(frozen=True)
class AnalysisOutcome:
    state: JobState
    delivery_ids: tuple[int, ...]


def finding_records(instances: Sequence[InstanceSummary], images: Sequence[AnalysedImage]) -> list[FindingRecord]:
    records = []
    for instance, image in zip(instances, images, strict=True):
        for finding in image.result.findings:
            code = code_for(finding.label)
            records.append(
                FindingRecord(
                    instance_id=instance.instance_id,
                    label=finding.label,
                    code_scheme=code.scheme,
                    code_value=code.value,
                    code_meaning=code.meaning,
                    probability=finding.probability,
                    box=finding.box.as_tuple() if finding.box is not None else None,
                )
            )
    return records


def score_records(
    instances: Sequence[InstanceSummary], images: Sequence[AnalysedImage], labels: Sequence[str]
) -> list[ScoreRecord]:
    """Every label's score on every image: its best candidate (the detector's output before thresholds), else its
    best finding, else 0; positive when it was reported."""
    records = []
    for instance, image in zip(instances, images, strict=True):
        outputs = (*image.result.candidates, *image.result.findings)
        reported = {f.label for f in image.result.findings}
        for label in labels:
            best = max((f.probability for f in outputs if f.label == label), default=0.0)
            records.append(ScoreRecord(instance.instance_id, label, float(best), label in reported))
    return records


Written = tuple[EncodedObject, Path]
"""An object and the file it was written to."""


def _store_results(
    session: Session, job_id: int, written: Sequence[Written]
) -> tuple[list[tuple[ResultKind, int]], int]:
    """Record the objects; returns this job's own (kind, row id) and how many an earlier job had already made. This
    job's SR supersedes the study's earlier SRs."""
    own: list[tuple[ResultKind, int]] = []
    for obj, path in written:
        result_id = results.upsert_result_object(session, job_id, obj.record(path))
        if results.result_job(session, result_id) == job_id:
            own.append((obj.kind, result_id))
    for kind, result_id in own:
        if kind is ResultKind.SR:
            results.supersede_earlier_srs(session, job_id, result_id)
    return own, len(written) - len(own)


@dataclass
class RecordedImages:
    """What ``record_image_objects`` wrote and recorded of a job's images before its end."""

    written: list[Written] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)


def record_image_objects(
    context: WorkerContext, job_id: int, objects: Sequence[EncodedObject], urgency: Urgency, into: RecordedImages
) -> list[int]:
    """Write one image's objects and record them with their DICOM deliveries while the job is still analysing, so
    that they go out while the rest is encoded (``worker.deliver``); ``record_results`` records the job's end.
    Returns the new deliveries still to send."""
    written = [(obj, obj.write(context.settings.results_dir)) for obj in objects]
    with context.session_factory.begin() as session:
        own, _ = _store_results(session, job_id, written)
        planned = plan_deliveries(context.settings, session, own, urgency, studies.job_senders(session, job_id)) or []
    into.written += written
    into.delivery_ids += planned
    return planned


def record_results(
    context: WorkerContext,
    job_id: int,
    objects: Sequence[EncodedObject],
    findings: Sequence[FindingRecord],
    state: JobState,
    detail: str,
    urgency: Urgency,
    provenance: Provenance,
    scores: Sequence[ScoreRecord] = (),
    before: RecordedImages | None = None,
) -> AnalysisOutcome:
    """Write the objects, record them with the findings, move the job to ``state`` and plan their deliveries. The
    objects recorded ``before`` count as the job's too; their deliveries were planned then (and some may have been
    sent, or refused, since: planning them again would undo that)."""
    before = before or RecordedImages()
    written = [(obj, obj.write(context.settings.results_dir)) for obj in objects]
    with context.session_factory.begin() as session:
        results.replace_findings(session, job_id, findings)
        results.replace_scores(session, job_id, scores)
        set_urgency(session, job_id, urgency)
        set_model(session, job_id, provenance.version, provenance.weights_sha256)
        own_before, reused_before = _store_results(session, job_id, before.written)
        own, reused = _store_results(session, job_id, written)
        if reused + reused_before:
            detail += f"; {reused + reused_before} objects unchanged from an earlier job (not sent again)"
        senders = studies.job_senders(session, job_id)
        shadow = withheld(context.settings, [*own_before, *own], urgency, senders)
        if shadow:
            jobs.mark_shadow(session, job_id)
            detail += "; shadow mode: withheld from the destinations in shadow"
        if state is not JobState.ENCODED:
            jobs.transition_job(session, job_id, state, reason=detail)
        else:
            jobs.transition_job(session, job_id, state, detail)
        planned = plan_deliveries(context.settings, session, own, urgency, senders)
        if planned is None and not before.delivery_ids:
            if state is JobState.ENCODED:
                why = "shadow mode: results kept, nothing sent" if shadow else "no destination for this result"
                jobs.transition_job(session, job_id, JobState.COMPLETED, why)
            return AnalysisOutcome(JobState.COMPLETED if state is JobState.ENCODED else state, ())
        delivery_ids = [*before.delivery_ids, *(planned or [])]
        if not delivery_ids and state is JobState.ENCODED:
            jobs.transition_job(session, job_id, JobState.DELIVERED, "every object was already delivered")
            return AnalysisOutcome(JobState.DELIVERED, ())
    return AnalysisOutcome(state, tuple(delivery_ids))
