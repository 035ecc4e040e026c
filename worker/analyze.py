"""The analysis stage: load → decode → detect → encode → write → record. A plain function; the task only calls it.

Idempotent: a job that already finished does nothing, and a re-run writes the same result UIDs (upserted rows).
A chest study that cannot be analysed gets an SR saying so (unless switched off), never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from pydicom.dataset import Dataset

from db import deliveries, jobs, rejections, results, studies
from db.jobs import AttemptsExhaustedError
from db.lifecycle import TERMINAL_JOB_STATES
from db.models import JobState, ResultKind, Urgency, utcnow
from db.studies import InstanceSummary
from dicom_node.rules import Eligibility, Verdict, evaluate
from models.imaging import DecodedImage, UndecodableImageError, read_dataset
from models.protocol import Detector, ImageResult
from models.registry import UnknownDetectorError
from worker.batching import gather
from worker.context import WorkerContext
from worker.early_analysis import image_decoding, prepared_images
from worker.encode.bundle import encode_image, encode_not_performed, encode_report
from worker.encode.inputs import AnalysedImage, EncodeContext
from worker.encode.trusted import trusted_header
from worker.encode.uids import source_token
from worker.record import (
    AnalysisOutcome,
    RecordedImages,
    finding_records,
    record_image_objects,
    record_results,
    score_records,
)
from worker.retraction import withdraw_rejected

logger = logging.getLogger(__name__)

_Decoded = tuple["_Work", list[Dataset], list[DecodedImage], list[ImageResult | None]]
"""A job's sources, their decoded images, and the detector results early analysis already has (None: to detect)."""

Announce = Callable[[Sequence[int]], None]
"""Hears the deliveries of objects recorded before their job's analysis ends: their messages can go at once."""

REJECTED_DURING_ANALYSIS = "the PACS rejected an image of the study while it was analysed; nothing more was sent"
PURGED_REASON = (
    "images of this study were removed by retention (retention settings) before this analysis; the earlier result "
    "stands, and nothing new is sent"
)


@dataclass(frozen=True)
class _Work:
    job_id: int
    study_id: int
    detector: str
    decision: Eligibility
    all_instances: tuple[InstanceSummary, ...]
    predecessors: tuple[Path, ...]
    attempt: int = 1
    generation: int = 0
    """The study's retracted jobs, counted once earlier results were withdrawn (``source_token``)."""

    @property
    def selected(self) -> tuple[InstanceSummary, ...]:
        return self.decision.instances


def analyze_job(context: WorkerContext, job_id: int, announce: Announce | None = None) -> AnalysisOutcome:
    """This job's outcome; jobs batched with it (``analyze_batch``) are finished too."""
    return analyze_batch(context, job_id, announce)[0]


def analyze_batch(context: WorkerContext, job_id: int, announce: Announce | None = None) -> list[AnalysisOutcome]:
    """The job, plus the queued jobs dynamic batching gathers for the same detector pass; the first outcome is the
    job's own, the rest those of its companions. ``announce`` hears the deliveries of each image's objects as they
    are recorded, before the job's end; the outcomes name every delivery still to send, those included."""
    first = _start(context, job_id)
    if isinstance(first, AnalysisOutcome):
        return [first]
    works = [first]
    # A retry runs alone: if its study is what crashed the worker, it must not take other jobs' attempts with it.
    if context.settings.worker.batch_max_images > 1 and first.attempt == 1:
        works += gather(
            context.session_factory,
            context.settings.worker,
            first.detector,
            job_id,
            len(first.selected),
            lambda other: _taken(context, other),
            lambda work: len(work.selected),
        )
    try:
        detector = context.detector(first.detector)
    except UnknownDetectorError as exc:
        return [_fail(context, work.job_id, str(exc)) for work in works]
    withdrawn = {
        w.job_id: withdraw_rejected(context.settings, context.session_factory, w.study_id, w.job_id) for w in works
    }
    with context.session_factory() as session:  # counted after the withdrawals: new results need new UIDs
        works = [replace(w, generation=jobs.retracted_jobs(session, w.study_id)) for w in works]
    outcomes: dict[int, AnalysisOutcome] = {}
    ready = []
    for work in works:
        screened = _screen(context, work, detector)
        if screened is None:
            ready.append(work)
        else:
            outcomes[work.job_id] = screened
    for work, images in _analyse_together(context, detector, ready, outcomes):
        outcomes[work.job_id] = _encode(context, work, detector, images, announce)
    return [_also_send(outcomes[work.job_id], withdrawn[work.job_id]) for work in works]


def _also_send(outcome: AnalysisOutcome, delivery_ids: list[int]) -> AnalysisOutcome:
    return AnalysisOutcome(outcome.state, (*delivery_ids, *outcome.delivery_ids)) if delivery_ids else outcome


def _taken(context: WorkerContext, job_id: int) -> _Work | None:
    started = _start(context, job_id)
    return None if isinstance(started, AnalysisOutcome) else started


def _screen(context: WorkerContext, work: _Work, detector: Detector) -> AnalysisOutcome | None:
    """The outcome of a job the rules keep from the detector; None for one to analyse."""
    if work.decision.verdict is Verdict.WITHDRAWN:
        with context.session_factory.begin() as session:
            jobs.transition_job(session, work.job_id, JobState.NOT_ELIGIBLE, reason=work.decision.reason)
        return AnalysisOutcome(JobState.NOT_ELIGIBLE, ())
    if any(i.purged_at is not None for i in work.all_instances):
        # The earlier images are gone: a follow-up made without them would supersede the earlier result with less.
        with context.session_factory.begin() as session:
            jobs.transition_job(session, work.job_id, JobState.NOT_ELIGIBLE, reason=PURGED_REASON)
        logger.warning("job %d not analysed: %s", work.job_id, PURGED_REASON)
        return AnalysisOutcome(JobState.NOT_ELIGIBLE, ())
    if work.decision.verdict is Verdict.NOT_APPLICABLE:
        with context.session_factory.begin() as session:
            jobs.transition_job(session, work.job_id, JobState.NOT_ELIGIBLE, reason=work.decision.reason)
        return AnalysisOutcome(JobState.NOT_ELIGIBLE, ())
    if work.decision.verdict is Verdict.NOT_PERFORMED:
        return _not_performed(context, work, detector, work.decision.reason or "", JobState.NOT_ELIGIBLE)
    if not work.selected:
        return _not_performed(context, work, detector, "no eligible image left in the study", JobState.FAILED)
    return None


def _analyse_together(
    context: WorkerContext, detector: Detector, works: Sequence[_Work], outcomes: dict[int, AnalysisOutcome]
) -> list[tuple[_Work, list[AnalysedImage]]]:
    """Decode every job's images (a job whose pixels cannot be decoded fails alone), then one detector pass over
    all of them, in chunks of ``batch_max_images``; what early analysis prepared is taken as it is."""
    decoded: list[_Decoded] = []
    decode = image_decoding(context, detector)
    for work in works:
        try:
            sources = [read_dataset(i.spool_path) for i in work.selected]
            prepared = prepared_images(context, detector, work.selected)
            if any(prepared):
                ready = sum(1 for p in prepared if p)
                logger.info("job %d: %d of %d images were analysed early", work.job_id, ready, len(prepared))
            images = [p.decoded if p else decode(ds) for p, ds in zip(prepared, sources, strict=True)]
            decoded.append((work, sources, images, [p.result if p else None for p in prepared]))
        except Exception as exc:  # any image that cannot be read or decoded: this job only, with a PHI-free reason
            reason = _reason(exc, "image not readable")
            outcomes[work.job_id] = _not_performed(context, work, detector, reason, JobState.FAILED)
    return [
        (
            work,
            [
                AnalysedImage(source=s, decoded=d, result=r, revision=i.revision, generation=work.generation)
                for i, s, d, r in zip(work.selected, sources, images, found, strict=True)
            ],
        )
        for work, sources, images, found in _detect(context, detector, decoded, outcomes)
    ]


def _detect(
    context: WorkerContext, detector: Detector, decoded: list[_Decoded], outcomes: dict[int, AnalysisOutcome]
) -> list[tuple[_Work, list[Dataset], list[DecodedImage], list[ImageResult]]]:
    """One detector pass over every job's images. If the pass fails, each job is run alone, so that a study the
    detector cannot take ends not-performed by itself and its companions still get their results."""
    flat = [
        image for _, _, images, known in decoded for image, result in zip(images, known, strict=True) if result is None
    ]
    size = max(1, context.settings.worker.batch_max_images)
    try:
        found = [
            result for start in range(0, len(flat), size) for result in detector.detect(flat[start : start + size])
        ]
    except Exception as exc:
        if len(decoded) > 1:
            logger.warning("a batched detector pass failed (%s); each job runs alone", type(exc).__name__)
            return [item for one in decoded for item in _detect(context, detector, [one], outcomes)]
        for work, _, _, _ in decoded:
            reason = _reason(exc, "the detector failed on this study")
            outcomes[work.job_id] = _not_performed(context, work, detector, reason, JobState.FAILED)
        return []
    fresh = iter(found)
    return [
        (work, sources, images, [result if result is not None else next(fresh) for result in known])
        for work, sources, images, known in decoded
    ]


def _encode(
    context: WorkerContext, work: _Work, detector: Detector, images: list[AnalysedImage], announce: Announce | None
) -> AnalysisOutcome:
    """Each image's objects written and recorded as soon as they are encoded (``announce`` hears their deliveries,
    which can go while the rest is encoded), then the SR, recorded with the findings as the job's end.

    Should the SR then fail to encode, the study gets the not-performed SR after the images' objects."""
    encode_context = EncodeContext(
        images=images,
        provenance=detector.provenance,
        equipment=context.settings.equipment,
        results=context.settings.results,
        urgency=context.settings.urgency,
        study_inputs=[source_token(i.sop_instance_uid, i.revision, work.generation) for i in work.all_instances],
        segmentations=any("SEG" in d.kinds for d in context.settings.destinations),
    )
    urgency = Urgency(encode_context.triage.urgency.value)
    recorded = _record_images(context, work, detector, encode_context, announce)
    if isinstance(recorded, AnalysisOutcome):
        return recorded
    try:
        report = encode_report(encode_context, _read_headers(work.predecessors), [obj for obj, _ in recorded.written])
    except Exception as exc:
        return _not_performed(context, work, detector, _reason(exc, "the result could not be encoded"), JobState.FAILED)
    if _rejected_meanwhile(context, work):
        return _fail(context, work.job_id, REJECTED_DURING_ANALYSIS, JobState.NOT_ELIGIBLE)
    findings = finding_records(work.selected, images)
    detail = f"{len(findings)} findings, {len(recorded.written) + 1} objects, {urgency.value}"
    scores = score_records(work.selected, images, detector.labels)
    provenance = detector.provenance
    outcome = record_results(
        context, work.job_id, [report], findings, JobState.ENCODED, detail, urgency, provenance, scores, recorded
    )
    if outcome.state is not JobState.ENCODED:
        return outcome
    with context.session_factory.begin() as session:  # images' objects sent meanwhile may have been the last to go
        return AnalysisOutcome(deliveries.settle_job(session, work.job_id), outcome.delivery_ids)


def _record_images(
    context: WorkerContext, work: _Work, detector: Detector, encode_context: EncodeContext, announce: Announce | None
) -> RecordedImages | AnalysisOutcome:
    """Each image's objects, written and recorded as soon as they are encoded; the job's outcome if one cannot be."""
    urgency = Urgency(encode_context.triage.urgency.value)
    recorded = RecordedImages()
    for number in range(1, len(encode_context.images) + 1):
        try:
            objects = encode_image(encode_context, number)
        except Exception as exc:
            # A header value the encoder cannot take: the SR says not performed, from trusted values.
            reason = _reason(exc, "the result could not be encoded")
            return _not_performed(context, work, detector, reason, JobState.FAILED)
        if _rejected_meanwhile(context, work):
            # The PACS withdrew an image meanwhile: nothing more made from it goes out.
            return _fail(context, work.job_id, REJECTED_DURING_ANALYSIS, JobState.NOT_ELIGIBLE)
        delivery_ids = record_image_objects(context, work.job_id, objects, urgency, recorded)
        if delivery_ids and announce is not None:
            announce(delivery_ids)
    return recorded


def _rejected_meanwhile(context: WorkerContext, work: _Work) -> bool:
    with context.session_factory() as session:
        return bool(rejections.rejected_among(session, [i.instance_id for i in work.selected]))


def _start(context: WorkerContext, job_id: int) -> _Work | AnalysisOutcome:
    now, worker = utcnow(), context.settings.worker
    with context.session_factory.begin() as session:
        summary = jobs.job_summary(session, job_id)
        if summary.state in TERMINAL_JOB_STATES or summary.state is JobState.ENCODED:
            logger.info("job %d already %s; nothing to do", job_id, summary.state.value)
            return AnalysisOutcome(summary.state, ())
        if summary.state is JobState.ANALYZING and summary.lease_expires_at and summary.lease_expires_at > now:
            # A redelivered or duplicated message while a live worker holds the lease: let that worker finish.
            logger.info("job %d is being analysed under a live lease; duplicate message ignored", job_id)
            return AnalysisOutcome(JobState.ANALYZING, ())
        try:
            lease = now + timedelta(seconds=worker.analysis_lease_s)
            work = jobs.start_attempt(session, job_id, lease, worker.max_attempts, worker.identity())
        except AttemptsExhaustedError as exc:
            jobs.transition_job(session, job_id, JobState.DEAD_LETTER, reason=str(exc))
            logger.error("job %d dead-lettered: %s", job_id, exc)
            return AnalysisOutcome(JobState.DEAD_LETTER, ())
        facts = studies.study_facts(session, summary.study_id)
        earlier = results.earlier_results(session, job_id, ResultKind.SR)
    return _Work(
        job_id=job_id,
        study_id=summary.study_id,
        detector=work.detector,
        decision=evaluate(facts, context.settings.rules),
        all_instances=tuple(i for i in facts.instances if i.rejected_at is None),
        predecessors=tuple(r.path for r in earlier),
        attempt=work.attempt,
    )


def _reason(exc: Exception, what: str) -> str:
    """Why a stage failed, fit for the job record, the log and the SR: our own errors say it in words with no patient
    data; anyone else's are named by type only, as their text may quote a header value (a birth date, a name)."""
    return str(exc) if isinstance(exc, UndecodableImageError) else f"{what} ({type(exc).__name__})"


def _read_headers(paths: Sequence[Path]) -> list[Dataset]:
    return [read_dataset(p, header_only=True) for p in paths if p.is_file()]


def _fail(context: WorkerContext, job_id: int, reason: str, state: JobState = JobState.FAILED) -> AnalysisOutcome:
    with context.session_factory.begin() as session:
        jobs.transition_job(session, job_id, state, reason=reason)
    logger.warning("job %d ended %s: %s", job_id, state.value, reason)
    return AnalysisOutcome(state, ())


def _not_performed(
    context: WorkerContext, work: _Work, detector: Detector, reason: str, state: JobState
) -> AnalysisOutcome:
    """The job ends in ``state`` with its reason; the study still receives an SR saying analysis was not performed."""
    instances = work.selected or work.all_instances
    if not context.settings.results.not_performed_sr or not instances:
        return _fail(context, work.job_id, reason)
    try:
        trusted = [trusted_header(read_dataset(i.spool_path, header_only=True)) for i in instances]
        left_out = sorted({keyword for _, keywords in trusted for keyword in keywords})
        reason += f"; header values left out: {', '.join(left_out)}" if left_out else ""
        sr = encode_not_performed(
            [header for header, _ in trusted],
            reason,
            detector.provenance,
            context.settings.equipment,
            _read_headers(work.predecessors),
            [source_token(i.sop_instance_uid, i.revision, work.generation) for i in work.all_instances],
        )
    except Exception as exc:  # even the trusted values could not make an SR: the job still ends, with its reason
        return _fail(context, work.job_id, f"{reason}; {_reason(exc, 'no SR possible')}")
    logger.warning("job %d not analysed (%s); sending a not-performed SR", work.job_id, reason)
    return record_results(context, work.job_id, [sr], [], state, reason, Urgency.NOT_PERFORMED, detector.provenance)
