"""``cxr worker``: one Celery worker process (solo pool), its model loaded once and kept warm, and the heartbeat that
says it is ready. The heartbeat starts only when Celery's consumer is up, so a worker listed (by the dashboard, by
``cxr healthcheck node``, by the ready line of ``cxr serve``) takes work at once."""

from __future__ import annotations

import os
import subprocess
import sys

from config.settings import Settings
from cxr.startup import load_detector_or_exit

MOST_CPU_PROCESSES = 4
"""The most analysis processes ``worker.analysis_processes = 0`` starts on the CPU: each holds a model and a torch
runtime in memory, and a bigger CPU host says how many it wants."""


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) or 1


def analysis_processes(settings: Settings, device: str) -> int:
    """How many analysis workers ``cxr serve`` starts on ``device`` (the resolved one: "cpu", "cuda:0")."""
    if settings.worker.analysis_processes:
        return settings.worker.analysis_processes
    return min(cores(), MOST_CPU_PROCESSES) if device == "cpu" else 1


def threads_each(processes: int) -> int:
    """Each of ``processes`` CPU analysis workers' share of the cores."""
    return max(1, cores() // processes)


def run_worker(settings: Settings, queues: str, threads: int = 0) -> None:
    """``threads``: the compute threads this worker takes (0: the libraries' defaults, every core)."""
    from celery.signals import worker_ready

    from models.extras import compute_device, limit_compute_threads
    from worker.celery_app import GPU_QUEUE, STAT_QUEUE, create_celery_app
    from worker.context import build_context, install
    from worker.early_analysis import image_decoding
    from worker.encode.warmup import warm_up
    from worker.heartbeat import Heartbeat

    if threads:
        limit_compute_threads(threads)
    context = build_context(settings)
    install(context)
    detector, version, device = "-", "-", "-"
    if GPU_QUEUE in queues.split(","):
        loaded = load_detector_or_exit(lambda: context.detector(settings.detector))
        detector, version = settings.detector, loaded.provenance.version
        warm_up(settings, loaded.provenance)  # before the heartbeat says ready: the first study costs no more
        image_decoding(context, loaded)  # on a CUDA device its JPEG 2000 decoder starts now (or says why not)
        # Only here: resolving the device imports torch, which a delivery worker would otherwise hold (about 500 MB).
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
                f"{name}@{settings.worker.identity()}",  # unique, as several run on one host
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        heartbeat.stop()
        if context.atna is not None:
            context.atna.close()  # what is still queued goes to the collector before the process ends


def analysis_workers(settings: Settings) -> tuple[int, int]:
    """(processes, compute threads each) for ``cxr serve``; 0 threads leaves a GPU worker the libraries' defaults."""
    device = _worker_device(settings.worker.device)
    count = analysis_processes(settings, device)
    return count, threads_each(count) if device == "cpu" else 0


def _worker_device(setting: str) -> str:
    """The device the analysis workers will resolve ``setting`` to, asked of a short-lived process: torch would keep
    about 500 MB resident in the supervisor, which otherwise needs about 120."""
    from models.extras import deep_installed

    if not deep_installed():
        return "cpu"  # what compute_device says without torch
    if setting != "auto":
        return setting
    probe = "from models.extras import compute_device; print(compute_device('auto'))"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    # A probe that fails counts as the CPU; the workers then meet the same problem and say it in their own words.
    return found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else "cpu"
