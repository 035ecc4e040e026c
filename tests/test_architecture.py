"""The layout in docs/architecture.md holds in the code: each package imports only what its row allows, and no two
modules import each other in a cycle. Each check is shown to fail on a copy of the tree with a planted import."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.import_graph import PACKAGES, cycles, imports, read_rules, violations

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(root: Path, module: str, line: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _planted() -> None:\n    {line}\n")


def test_the_table_has_a_row_for_every_package() -> None:
    rules = read_rules(ARCHITECTURE)
    assert set(rules) == set(PACKAGES)
    assert rules["config"].may_import == frozenset() and rules["models"].may_import == frozenset()
    assert "torch" in rules["dicom_node"].never_imports, "the SCP never loads torch"


def test_every_import_is_allowed_by_the_architecture_table() -> None:
    assert imports(ROOT), "the reader found no import at all"
    assert violations(ROOT, read_rules(ARCHITECTURE)) == []


def test_there_is_no_import_cycle() -> None:
    assert cycles(ROOT) == []


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("db.models", "import worker.queue", "db may not import worker"),
        ("config.settings", "from db import jobs", "config may not import db"),
        ("models.codes", "from config.settings import Settings", "models may not import config"),
        ("dicom_node.completion", "import torch", "dicom_node never imports torch"),
        ("worker.tasks", "from dashboard.app import create_app", "worker may not import dashboard"),
    ],
)
def test_a_planted_forbidden_import_is_reported(tree_copy: Path, module: str, line: str, expected: str) -> None:
    rules = read_rules(ARCHITECTURE)
    assert violations(tree_copy, rules) == []
    plant(tree_copy, module, line)
    (problem,) = violations(tree_copy, rules)
    assert problem.startswith(f"{module}:") and expected in problem


def test_a_planted_cycle_is_reported(tree_copy: Path) -> None:
    assert cycles(tree_copy) == []
    plant(tree_copy, "db.errors", "from db.jobs import get_job")  # db.jobs imports db.errors
    (cycle,) = cycles(tree_copy)
    assert {"db.errors", "db.jobs"} <= set(cycle)


def test_relative_and_package_imports_resolve_to_modules(tree_copy: Path) -> None:
    plant(tree_copy, "worker.encode.sr", "from . import gsps")
    plant(tree_copy, "db.errors", "from db import studies")
    found = {(i.module, i.target) for i in imports(tree_copy)}
    assert ("worker.encode.sr", "worker.encode.gsps") in found and ("db.errors", "db.studies") in found
