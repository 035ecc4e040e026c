"""The analysis stage: load → decode → detect → encode → write → record. A plain function; the task only calls it.

Idempotent: a job that already finished does nothing, and a re-run writes the same result UIDs (upserted rows).
A chest study that cannot be analysed gets an SR saying so (unless switched off), never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydicom.dataset import Dataset

from db import deliveries, repository
from db.repository import AttemptsExhaustedError
from db.models import TERMINAL_JOB_STATES, JobState, ResultKind, utcnow
from db.records import FindingRecord, InstanceSummary, ResultRecord
from dicom_node.rules import Eligibility, Verdict, evaluate
from models.codes import code_for
from models.imaging import UndecodableImageError, decode_dataset, read_dataset
from models.protocol import Detector
from models.registry import UnknownDetectorError
from worker.context import WorkerContext
from worker.encode.bundle import EncodedObject, encode_not_performed, encode_study
from worker.encode.common import AnalysedImage, EncodeContext

logger = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """Retrying cannot help (for example, pixel data that cannot be decoded); the job fails with this reason."""


@dataclass(frozen=True)
class AnalysisOutcome:
    state: JobState
    delivery_ids: tuple[int, ...]


@dataclass(frozen=True)
class _Work:
    job_id: int
    detector: str
    decision: Eligibility
    all_instances: tuple[InstanceSummary, ...]
    predecessors: tuple[Path, ...]

    @property
    def selected(self) -> tuple[InstanceSummary, ...]:
        return self.decision.instances


def analyze_job(context: WorkerContext, job_id: int) -> AnalysisOutcome:
    work = _start(context, job_id)
    if isinstance(work, AnalysisOutcome):
        return work
    try:
        detector = context.detector(work.detector)
    except UnknownDetectorError as exc:
        return _fail(context, job_id, str(exc))
    if work.decision.verdict is Verdict.NOT_APPLICABLE:
        with context.session_factory.begin() as session:
            repository.transition_job(session, job_id, JobState.NOT_ELIGIBLE, reason=work.decision.reason)
        return AnalysisOutcome(JobState.NOT_ELIGIBLE, ())
    if work.decision.verdict is Verdict.NOT_PERFORMED:
        return _not_performed(context, work, detector, work.decision.reason or "", JobState.NOT_ELIGIBLE)
    try:
        if not work.selected:
            raise PermanentJobError("no eligible image left in the study")
        images = _analyse(detector, work.selected)
    except (PermanentJobError, UndecodableImageError) as exc:
        return _not_performed(context, work, detector, str(exc), JobState.FAILED)
    encode_context = EncodeContext(
        images=images,
        provenance=detector.provenance,
        equipment=context.settings.equipment,
        results=context.settings.results,
    )
    objects = encode_study(encode_context, _read_headers(work.predecessors))
    findings = _finding_records(work.selected, images)
    detail = f"{len(findings)} findings, {len(objects)} objects"
    return _record(context, job_id, objects, findings, JobState.ENCODED, detail)


def _start(context: WorkerContext, job_id: int) -> _Work | AnalysisOutcome:
    now, worker = utcnow(), context.settings.worker
    with context.session_factory.begin() as session:
        summary = repository.job_summary(session, job_id)
        if summary.state in TERMINAL_JOB_STATES or summary.state is JobState.ENCODED:
            logger.info("job %d already %s; nothing to do", job_id, summary.state.value)
            return AnalysisOutcome(summary.state, ())
        if summary.state is JobState.ANALYZING and summary.lease_expires_at and summary.lease_expires_at > now:
            # A redelivered or duplicated message while a live worker holds the lease: let that worker finish.
            logger.info("job %d is being analysed under a live lease; duplicate message ignored", job_id)
            return AnalysisOutcome(JobState.ANALYZING, ())
        try:
            lease = now + timedelta(seconds=worker.analysis_lease_s)
            work = repository.start_attempt(session, job_id, lease, worker.max_attempts)
        except AttemptsExhaustedError as exc:
            repository.transition_job(session, job_id, JobState.DEAD_LETTER, reason=str(exc))
            logger.error("job %d dead-lettered: %s", job_id, exc)
            return AnalysisOutcome(JobState.DEAD_LETTER, ())
        facts = repository.study_facts(session, summary.study_id)
        earlier = repository.earlier_results(session, job_id, ResultKind.SR)
    return _Work(
        job_id=job_id,
        detector=work.detector,
        decision=evaluate(facts, context.settings.rules),
        all_instances=facts.instances,
        predecessors=tuple(r.path for r in earlier),
    )


def _analyse(detector: Detector, instances: Sequence[InstanceSummary]) -> list[AnalysedImage]:
    sources = [read_dataset(i.spool_path) for i in instances]
    decoded = [decode_dataset(ds) for ds in sources]
    results = detector.detect(decoded)
    return [AnalysedImage(source=s, decoded=d, result=r) for s, d, r in zip(sources, decoded, results, strict=True)]


def _read_headers(paths: Sequence[Path]) -> list[Dataset]:
    return [read_dataset(p, header_only=True) for p in paths if p.is_file()]


def _fail(context: WorkerContext, job_id: int, reason: str) -> AnalysisOutcome:
    with context.session_factory.begin() as session:
        repository.transition_job(session, job_id, JobState.FAILED, reason=reason)
    logger.warning("job %d failed: %s", job_id, reason)
    return AnalysisOutcome(JobState.FAILED, ())


def _not_performed(
    context: WorkerContext, work: _Work, detector: Detector, reason: str, state: JobState
) -> AnalysisOutcome:
    """The job ends in ``state`` with its reason; the study still receives an SR saying analysis was not performed."""
    instances = work.selected or work.all_instances
    if not context.settings.results.not_performed_sr or not instances:
        return _fail(context, work.job_id, reason)
    try:
        sources = [read_dataset(i.spool_path, header_only=True) for i in instances]
    except UndecodableImageError as exc:
        return _fail(context, work.job_id, f"{reason}; no SR possible: {exc}")
    sr = encode_not_performed(
        sources, reason, detector.provenance, context.settings.equipment, _read_headers(work.predecessors)
    )
    logger.warning("job %d not analysed (%s); sending a not-performed SR", work.job_id, reason)
    return _record(context, work.job_id, [sr], [], state, reason)


def _finding_records(instances: Sequence[InstanceSummary], images: Sequence[AnalysedImage]) -> list[FindingRecord]:
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


def _record(
    context: WorkerContext,
    job_id: int,
    objects: Sequence[EncodedObject],
    findings: Sequence[FindingRecord],
    state: JobState,
    detail: str,
) -> AnalysisOutcome:
    """Write the objects, record them with the findings, move the job to ``state`` and plan the deliveries."""
    written = [(obj, obj.write(context.settings.results_dir)) for obj in objects]
    destinations = [d.name for d in context.settings.destinations]
    with context.session_factory.begin() as session:
        repository.replace_findings(session, job_id, findings)
        result_ids = [
            repository.upsert_result_object(
                session,
                job_id,
                ResultRecord(
                    kind=obj.kind,
                    sop_class_uid=str(obj.dataset.SOPClassUID),
                    sop_instance_uid=obj.sop_instance_uid,
                    series_instance_uid=str(obj.dataset.SeriesInstanceUID),
                    path=path,
                ),
            )
            for obj, path in written
        ]
        if state is not JobState.ENCODED:
            repository.transition_job(session, job_id, state, reason=detail)
        else:
            repository.transition_job(session, job_id, state, detail)
        if not destinations:
            if state is JobState.ENCODED:
                repository.transition_job(session, job_id, JobState.COMPLETED, "no destination configured")
            return AnalysisOutcome(JobState.COMPLETED if state is JobState.ENCODED else state, ())
        delivery_ids = deliveries.ensure_deliveries(session, result_ids, destinations)
        if not delivery_ids and state is JobState.ENCODED:
            repository.transition_job(session, job_id, JobState.DELIVERED, "every object was already delivered")
            return AnalysisOutcome(JobState.DELIVERED, ())
    return AnalysisOutcome(state, tuple(delivery_ids))
