"""OHIF's own SR reading code (tests/viewers/ohif: dcmjs and @cornerstonejs/adapters, pinned by its lockfile), run
in Node on our SRs, and what a radiologist would then see compared with what we meant to show."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.codes import code_for
from tests.helpers.peers import require_tool, unavailable

OHIF = Path(__file__).resolve().parents[1] / "viewers" / "ohif"
TOLERANCE_PX = 0.5


@dataclass(frozen=True)
class Expected:
    """One boxed finding as we encoded it."""

    label: str
    sop_instance_uid: str
    box: tuple[float, float, float, float]


def _run(script: str, *arguments: str) -> dict[str, Any]:
    node = require_tool("node")
    if not (OHIF / "node_modules" / "@cornerstonejs" / "adapters").is_dir():
        unavailable(f"OHIF's packages are not installed: run npm ci in {OHIF} (make test does)")
    done = subprocess.run([node, str(OHIF / script), *arguments], capture_output=True, text=True, timeout=120, cwd=OHIF)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def read_with_ohif(sr: Path, rows: int, columns: int) -> dict[str, Any]:
    """What OHIF's SR loaders make of an SR whose images are ``rows`` × ``columns``."""
    return _run("read_sr.mjs", str(sr), f"{rows}:{columns}")


def read_seg_with_ohif(seg: Path, source_uid: str, rows: int, columns: int) -> dict[str, Any]:
    """What OHIF's SEG loader makes of a SEG over the image ``source_uid``: each segment's label, coded type and
    pixel extent (inclusive pixel indices)."""
    return _run("read_seg.mjs", str(seg), source_uid, f"{rows}:{columns}")


def _bounds(points: list[list[float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _matches(box: tuple[float, ...], other: tuple[float, ...]) -> bool:
    return all(abs(a - b) <= TOLERANCE_PX for a, b in zip(box, other, strict=True))


def ohif_problems(result: dict[str, Any], expected: list[Expected]) -> list[str]:
    """What OHIF would get wrong, or miss, about our findings; empty when it shows each one, once, with our label,
    our box (±0.5 px) on our image, in both its measurement-tracking and its read-only SR path."""
    problems = [f"{path}: {result[path]['error']}" for path in ("hydrated", "readOnly") if result[path]["error"]]
    hydrated, read_only = result["hydrated"]["measurements"], result["readOnly"]["measurements"]
    if len(hydrated) != len(expected):
        problems.append(f"hydrated: {len(hydrated)} measurements for {len(expected)} boxed findings")
    if len(read_only) != len(expected):
        problems.append(f"readOnly: {len(read_only)} measurements for {len(expected)} boxed findings")
    for want in expected:
        meaning = code_for(want.label).meaning
        shown = [
            m
            for m in hydrated
            if m["referencedSOPInstanceUID"] == want.sop_instance_uid
            and m["label"] == meaning
            and m["toolType"] == "RectangleROI"
            and _matches(_bounds(m["points"]), want.box)
        ]
        if len(shown) != 1:
            problems.append(f"hydrated: {want.label} at {want.box} shown {len(shown)} times")
        drawn = [
            m
            for m in read_only
            if m["referencedSOPInstanceUID"] == want.sop_instance_uid
            and want.label in (m["trackingIdentifier"] or "")
            and _matches(_bounds([m["graphicData"][i : i + 2] for i in range(0, len(m["graphicData"]), 2)]), want.box)
        ]
        if len(drawn) != 1:
            problems.append(f"readOnly: {want.label} at {want.box} drawn {len(drawn)} times")
    return problems
