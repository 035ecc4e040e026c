"""``cxr worker``: one Celery worker process (solo pool), its model loaded once and kept warm, and the heartbeat that
says it is ready. The heartbeat starts only when Celery's consumer is up, so a worker listed (by the dashboard, by
``cxr healthcheck node``, by the ready line of ``cxr serve``) takes work at once."""

from __future__ import annotations

from config.settings import Settings
from cxr.startup import load_detector_or_exit


def run_worker(settings: Settings, queues: str) -> None:
    from celery.signals import worker_ready

    from models.extras import compute_device
    from worker.celery_app import GPU_QUEUE, STAT_QUEUE, create_celery_app
    from worker.context import build_context, install
    from worker.heartbeat import Heartbeat

    context = build_context(settings)
    install(context)
    detector, version = "-", "-"
    if GPU_QUEUE in queues.split(","):
        loaded = load_detector_or_exit(lambda: context.detector(settings.detector))
        detector, version = settings.detector, loaded.provenance.version
    device = compute_device(settings.worker.device)
    heartbeat = Heartbeat(
        context.session_factory,
        Heartbeat.record_for(queues, device, detector, version, settings.worker.identity()),
    )
    worker_ready.connect(lambda **_: heartbeat.start(), weak=False)
    celery = create_celery_app(settings)
    name = queues.replace(",", "-")
    if GPU_QUEUE in queues.split(",") and STAT_QUEUE not in queues.split(","):
        queues = f"{STAT_QUEUE},{queues}"  # an analysis worker takes urgent studies first
    # Celery's banner and task list are start-up noise below WARNING; they come back with log_level = "DEBUG".
    quiet = [] if settings.log_level.upper() == "DEBUG" else ["--quiet"]
    try:
        celery.worker_main(
            [
                *quiet,
                "worker",
                "--queues",
                queues,
                "--pool",
                "solo",
                "--loglevel",
                settings.log_level,
                "--hostname",
                f"{name}@{settings.worker.node_name or '%h'}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        heartbeat.stop()
        if context.atna is not None:
            context.atna.close()  # what is still queued goes to the collector before the process ends
