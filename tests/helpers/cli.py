"""Running the ``cxr`` console script as a user would: a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*arguments: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "cxr", *arguments], capture_output=True, text=True, timeout=300, cwd=cwd, env=environment
    )


CLASSIFIER_TRAINING = (
    "--architecture",
    "resnet18",
    "--init",
    "scratch",
    "--input-size",
    "128",
    "--batch-size",
    "8",
    "--learning-rate",
    "1e-3",
    "--device",
    "cpu",
)


def configure(tmp_path: Path) -> Path:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n\n[model]\nweights_dir = "{tmp_path / "weights"}"\n')
    return config


def cxr(tmp_path: Path, *arguments: str) -> str:
    result = run_cli(*arguments, "--config", str(tmp_path / "cxr.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
