"""The light install (pyproject's dependencies without the ``deep`` extra): a second venv, on the newest Python the
project supports that this machine has, runs ``cxr serve`` with the baseline and returns RG1's results to DCMTK's
storescp; asking it for a deep detector, training or evaluation stops with exit code 2 and the pip command to run."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.extras import INSTALL_HINT
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import free_port, storescp, storescu

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NEWEST_FIRST = ("3.13", "3.12", "3.11")


def runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import venv"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def newest_python() -> str:
    """python3.13 or python3.12 from PATH or pyenv's versions, else the interpreter behind this venv (3.11)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in NEWEST_FIRST:
        found = [shutil.which(f"python{minor}"), *sorted(glob.glob(str(pyenv / f"{minor}.*" / "bin" / "python")))]
        for python in filter(None, found):
            if runs(python):
                return python
    return sys._base_executable


@pytest.fixture(scope="module")
def light_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    venv = tmp_path_factory.mktemp("light") / "venv"
    subprocess.run([newest_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    started = time.monotonic()
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-e", str(REPO)], capture_output=True, text=True, timeout=900
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    print(f"light install: {time.monotonic() - started:.0f} s")
    return python


def test_the_light_install_has_no_torch_and_runs_the_baseline_node_end_to_end(
    tmp_path: Path, rg1: Path, light_python: str
) -> None:
    absent = subprocess.run(
        [
            light_python,
            "-c",
            "import importlib.util as u; print([m for m in ('torch', 'torchvision') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert absent.stdout.strip() == "[]"
    with (
        storescp(tmp_path / "pacs") as pacs_port,
        cxr_serve(tmp_path / "node", pacs_port, python=light_python) as node,
    ):
        assert storescu(rg1, node.port).returncode == 0
        received = wait_for_files(tmp_path / "pacs", 3, timeout_s=90)
    assert {ds.Modality for ds in received} == {"SR", "OT", "PR"}
    assert "Traceback" not in node.log.read_text()


def cli(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    return subprocess.run([python, "-m", "cxr", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_a_deep_detector_training_or_evaluation_on_the_light_install_names_the_pip_command(
    tmp_path: Path, light_python: str
) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\ndetector = "xrv:densenet121-res224-all"\n'
        f"[scp]\nport = {free_port()}\n[dashboard]\nport = {free_port()}\n"
    )
    result = cli(light_python, "serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "detector 'xrv:densenet121-res224-all' needs the deep extra (torch is not installed)" in result.stdout
    assert INSTALL_HINT in " ".join(result.stdout.split())
    assert "Traceback" not in result.stdout + result.stderr
    for command in (
        ["evaluate", "--detector", "baseline", "--layout", "csv", "--data", str(config)],
        ["model", "list"],
    ):
        result = cli(light_python, *command, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"cxr {command[0]}" in result.stdout and "needs the deep extra" in result.stdout, result.stdout
