"""The analysis stage: load → decode → detect → encode → write → record. A plain function; the task only calls it.

Idempotent: a job that already finished does nothing, and a re-run writes the same result UIDs (upserted rows).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from db import repository
from db.models import TERMINAL_JOB_STATES, JobState
from db.records import FindingRecord, InstanceSummary, ResultRecord
from dicom_node.rules import evaluate
from models.codes import code_for
from models.imaging import UndecodableImageError, decode_dataset, read_dataset
from models.protocol import Detector
from models.registry import UnknownDetectorError
from worker.context import WorkerContext
from worker.encode.bundle import EncodedObject, encode_study
from worker.encode.common import AnalysedImage, EncodeContext

logger = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """Retrying cannot help (for example, pixel data that cannot be decoded); the job fails with this reason."""


@dataclass(frozen=True)
class AnalysisOutcome:
    state: JobState
    delivery_ids: tuple[int, ...]


def analyze_job(context: WorkerContext, job_id: int) -> AnalysisOutcome:
    with context.session_factory.begin() as session:
        summary = repository.job_summary(session, job_id)
        if summary.state in TERMINAL_JOB_STATES or summary.state is JobState.ENCODED:
            logger.info("job %d already %s; nothing to do", job_id, summary.state.value)
            return AnalysisOutcome(summary.state, ())
        work = repository.start_attempt(session, job_id)
        facts = repository.study_facts(session, summary.study_id)
    selected = evaluate(facts).instances
    try:
        if not selected:
            raise PermanentJobError("no eligible image left in the study")
        detector = context.detector(work.detector)
        images = _analyse(detector, selected)
    except (PermanentJobError, UndecodableImageError, UnknownDetectorError) as exc:
        with context.session_factory.begin() as session:
            repository.transition_job(session, job_id, JobState.FAILED, reason=str(exc))
        logger.warning("job %d failed: %s", job_id, exc)
        return AnalysisOutcome(JobState.FAILED, ())
    encode_context = EncodeContext(images=images, provenance=detector.provenance, equipment=context.settings.equipment)
    objects = encode_study(encode_context)
    written = [(obj, obj.write(context.settings.results_dir)) for obj in objects]
    return _record(context, job_id, selected, images, written)


def _analyse(detector: Detector, instances: Sequence[InstanceSummary]) -> list[AnalysedImage]:
    sources = [read_dataset(i.spool_path) for i in instances]
    decoded = [decode_dataset(ds) for ds in sources]
    results = detector.detect(decoded)
    return [AnalysedImage(source=s, decoded=d, result=r) for s, d, r in zip(sources, decoded, results, strict=True)]


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
    instances: Sequence[InstanceSummary],
    images: Sequence[AnalysedImage],
    written: Sequence[tuple[EncodedObject, Path]],
) -> AnalysisOutcome:
    destinations = [d.name for d in context.settings.destinations]
    with context.session_factory.begin() as session:
        repository.replace_findings(session, job_id, _finding_records(instances, images))
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
        findings = sum(len(i.result.findings) for i in images)
        repository.transition_job(session, job_id, JobState.ENCODED, f"{findings} findings, {len(written)} objects")
        if not destinations:
            repository.transition_job(session, job_id, JobState.COMPLETED, "no destination configured")
            return AnalysisOutcome(JobState.COMPLETED, ())
        delivery_ids = repository.ensure_deliveries(session, result_ids, destinations)
        if not delivery_ids:
            repository.transition_job(session, job_id, JobState.DELIVERED, "every object was already delivered")
            return AnalysisOutcome(JobState.DELIVERED, ())
    return AnalysisOutcome(JobState.ENCODED, tuple(delivery_ids))
