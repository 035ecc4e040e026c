"""worker.encode.header's IHE AI Results identity: every object we emit names its algorithm in the Contributing
Equipment Sequence (Purpose of Reference 1630 99IHE "Processing Algorithm", the model's name and version, a Device UID
that follows the model), and the banner carries the model version and its weights' sha256 prefix. dciodvfy and
PixelMed run on the same objects in ``test_encode``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from db.models import RejectionReason
from models.protocol import Provenance
from tests.helpers.encode_cases import CASES, analysed, case_sources, context
from worker.encode.banner import banner_for
from worker.encode.bundle import encode_study
from worker.encode.header import algorithm_device_uid
from worker.encode.kos import build_rejection_kos


def air_items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    return [
        item
        for item in ds.get("ContributingEquipmentSequence", [])
        if [(c.CodeValue, c.CodingSchemeDesignator) for c in item.PurposeOfReferenceCodeSequence] == [("1630", "99IHE")]
    ]


@pytest.mark.parametrize("case", CASES)
def test_every_object_names_its_algorithm(case: str, rg1: Path, rg1_j2ki: Path) -> None:
    encode = context(analysed(case_sources(case, rg1, rg1_j2ki)), segmentations=True)
    objects = encode_study(encode)
    assert {o.kind.value for o in objects} == {"SR", "SC", "GSPS", "SEG"}
    kos = build_rejection_kos([o.dataset for o in objects], RejectionReason.QUALITY, encode.equipment, "test")
    device_uid = algorithm_device_uid(encode.provenance)
    for ds in [*(o.dataset for o in objects), kos]:
        (item,) = air_items(ds)
        assert item.DeviceUID == device_uid, ds.Modality
        assert (item.ManufacturerModelName, item.SoftwareVersions) == (
            encode.provenance.name,
            encode.provenance.version,
        )


def test_another_model_version_or_weights_is_another_device() -> None:
    base = Provenance("densenet", "1.0", "a" * 64, {"threshold": "0.5"})
    uids = {
        algorithm_device_uid(p)
        for p in (
            base,
            replace(base, version="1.1"),
            replace(base, weights_sha256="b" * 64),
            replace(base, parameters={"threshold": "0.6"}),
        )
    }
    assert len(uids) == 4 and algorithm_device_uid(base) == algorithm_device_uid(replace(base))


def test_the_banner_names_the_version_and_the_weights() -> None:
    banner = banner_for(Provenance("densenet", "1.2.0", "0123456789abcdef" * 4))
    assert banner.endswith("densenet 1.2.0 (0123456789ab)")
    assert banner_for(Provenance("baseline", "0.1.0")).endswith("baseline 0.1.0")
