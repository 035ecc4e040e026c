"""Early analysis: each eligible image is decoded and run through the detector as soon as it is durable, while its
study waits for completion; the job then finds the findings ready and only encodes and sends.

A cache, not a record: it lives in the analysis worker's process (one solo-pool process holds the warm model) and in
the spool, where the node's other analysis workers find it (``worker.shared_findings``). It is keyed by the instance,
its revision, the model (``Provenance.output_key``), the decode's resolution and the spooled file itself, so a
corrected image, another model, other thresholds or a database made anew beside an old spool never meet an older
entry. A miss (the entry was evicted, or the job came before the early analysis ended) costs what the job did before:
it analyses the image itself. The findings a job records come from the same function on the same inputs either way
(``tests/worker/test_early_analysis.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from db import jobs, studies
from db.studies import InstanceSummary
from dicom_node.rules import Verdict, evaluate
from models.extras import compute_device
from models.imaging import ImageDecoding, read_dataset
from models.j2k_gpu import gpu_decoder
from models.protocol import Detector, working_long_side
from worker.context import WorkerContext
from worker.findings_cache import CacheKey, Prepared

logger = logging.getLogger(__name__)


def cache_key(instance: InstanceSummary, detector: Detector, long_side: int | None) -> CacheKey:
    output = detector.provenance.output_key
    return instance.instance_id, instance.revision, output, long_side, file_fingerprint(instance)


def file_fingerprint(instance: InstanceSummary) -> str:
    """The image's UID and its spooled file's size and time: ids and revisions restart with a new database."""
    try:
        stat = instance.spool_path.stat()
    except OSError:  # the job meets the missing file and says so
        return f"{instance.sop_instance_uid}:missing"
    return f"{instance.sop_instance_uid}:{stat.st_size}:{stat.st_mtime_ns}"


def image_decoding(context: WorkerContext, detector: Detector) -> ImageDecoding:
    """How this worker decodes images for the detector: JPEG 2000 on its GPU, in full, where ``worker.gpu_decode``
    and a decoder there allow (``models.j2k_gpu``); else reduced to the detector's view where ``worker.reduced_decode``
    is set (``models.j2k``); else in full."""
    worker = context.settings.worker
    device = compute_device(worker.device)  # "cpu", "cuda" or "cuda:N"; the CPU on the light install
    if worker.gpu_decode and device.startswith("cuda"):
        decoder = gpu_decoder(int(device.partition(":")[2] or 0))
        if decoder is not None:
            return ImageDecoding(accelerated=decoder)
    return ImageDecoding(long_side=working_long_side(detector) if worker.reduced_decode else None)


def analyse_early(context: WorkerContext, study_id: int) -> int:
    """Analyse the study's eligible images that no entry holds yet; returns how many. Nothing is written to the
    database: the job records the findings when it runs. A study whose job already waits is left to that job."""
    if context.settings.worker.early_analysis_mb <= 0:
        return 0
    with context.session_factory() as session:
        if jobs.study_has_waiting_job(session, study_id):
            return 0
        facts = studies.study_facts(session, study_id)
    decision = evaluate(facts, context.settings.rules)
    if decision.verdict is not Verdict.ANALYSE:
        return 0
    detector = context.detector(context.settings.detector)
    decoding = image_decoding(context, detector)
    side = decoding.long_side
    todo = [
        i for i in decision.instances if i.rejected_at is None and cache_key(i, detector, side) not in context.findings
    ]
    if not todo:
        return 0
    try:
        decoded = [decoding(read_dataset(i.spool_path)) for i in todo]
        found = detector.detect(decoded)
    except Exception as exc:  # the job meets the same image and says what is wrong with it, in its own words
        logger.info("early analysis of study %d skipped: %s", study_id, type(exc).__name__)
        return 0
    for instance, image, result in zip(todo, decoded, found, strict=True):
        context.findings.put(cache_key(instance, detector, side), result, image)
    logger.info("study %d: analysed early (images: %d)", study_id, len(todo))
    return len(todo)


def prepared_images(
    context: WorkerContext, detector: Detector, instances: Sequence[InstanceSummary]
) -> list[Prepared | None]:
    """What early analysis left for each instance of a job, if anything."""
    side = image_decoding(context, detector).long_side
    return [context.findings.get(cache_key(instance, detector, side)) for instance in instances]
