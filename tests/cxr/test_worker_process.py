"""cxr.worker_process and cxr.serve's children: how many analysis workers ``cxr serve`` starts on which device, and the
share of the cores each computes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings, WorkerSettings
from cxr import worker_process
from cxr.serve import child_commands
from cxr.worker_process import MOST_CPU_PROCESSES, analysis_processes, threads_each


def settings(tmp_path: Path, processes: int = 0) -> Settings:
    return Settings(data_dir=tmp_path, worker=WorkerSettings(analysis_processes=processes))


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (3, 3), (16, MOST_CPU_PROCESSES)])
def test_on_the_cpu_one_worker_per_core_up_to_a_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, expected: int
) -> None:
    monkeypatch.setattr(worker_process, "cores", lambda: cores)
    assert analysis_processes(settings(tmp_path), "cpu") == expected
    assert threads_each(expected) == max(1, cores // expected)


def test_one_worker_per_gpu_and_the_setting_wins(tmp_path: Path) -> None:
    assert analysis_processes(settings(tmp_path), "cuda:0") == 1
    assert analysis_processes(settings(tmp_path, 3), "cpu") == 3
    assert analysis_processes(settings(tmp_path, 2), "cuda:0") == 2


def test_serve_starts_each_analysis_worker_with_its_share_of_the_cores(tmp_path: Path) -> None:
    config = tmp_path / "cxr.toml"
    commands = child_commands(config, dashboard=False, analysis=(2, 1))
    analysing = [c for c in commands if c[3:6] == ["worker", "--queues", "gpu"]]
    assert (
        analysing
        == [[sys.executable, "-m", "cxr", "worker", "--queues", "gpu", "--threads", "1", "--config", str(config)]] * 2
    )
    assert analysing[0] is not analysing[1], "each child owns its command"
    on_a_gpu = [c for c in child_commands(config, dashboard=False, analysis=(1, 0)) if "gpu" in c]
    assert on_a_gpu == [[sys.executable, "-m", "cxr", "worker", "--queues", "gpu", "--config", str(config)]]


def test_a_worker_given_threads_computes_on_that_many() -> None:
    """In a process of its own: the limit is process-wide."""
    probe = (
        "import cv2, torch\n"
        "from models.extras import limit_compute_threads\n"
        "limit_compute_threads(1)\n"
        "print(cv2.getNumThreads(), torch.get_num_threads())\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert found.stdout.split() == ["1", "1"]


def test_serve_learns_the_workers_device_without_loading_torch_itself() -> None:
    """The supervisor stays small (about 120 MB, not 600): the device is resolved in a short-lived process."""
    probe = (
        "import sys\n"
        "from config.settings import Settings, WorkerSettings\n"
        "from cxr.worker_process import _worker_device\n"
        "from models.extras import compute_device\n"
        "found = [_worker_device(s) for s in ('auto', 'cpu', 'cuda:1')]\n"
        "print(*found, 'torch' in sys.modules)\n"
        "print(compute_device('auto'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    devices, in_process = result.stdout.splitlines()
    assert devices.split() == [in_process, "cpu", "cuda:1", "False"]
