"""Every result object: encoded, written, read back, checked for content, and validated by dciodvfy and PixelMed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from db.models import ResultKind
from db.settings import EquipmentSettings
from models.baseline import BaselineDetector
from models.imaging import decode_dataset
from worker.encode.bundle import EncodedObject, encode_study
from worker.encode.common import AnalysedImage, EncodeContext
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors


def encode(path: Path) -> tuple[EncodeContext, list[EncodedObject]]:
    ds = pydicom.dcmread(path)
    detector = BaselineDetector()
    decoded = decode_dataset(ds)
    context = EncodeContext(
        images=[AnalysedImage(ds, decoded, detector.detect([decoded])[0])],
        provenance=detector.provenance,
        equipment=EquipmentSettings(),
    )
    return context, encode_study(context)


@pytest.fixture(scope="module")
def written(rg1: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[ResultKind, Path]:
    out = tmp_path_factory.mktemp("results")
    _, objects = encode(rg1)
    return {obj.kind: obj.write(out) for obj in objects}


@pytest.mark.parametrize("kind", list(ResultKind))
def test_dciodvfy_reports_no_error(written: dict[ResultKind, Path], kind: ResultKind) -> None:
    assert dciodvfy_errors(written[kind]) == []


def test_pixelmed_validates_the_sr(written: dict[ResultKind, Path]) -> None:
    assert pixelmed_sr_errors(written[ResultKind.SR]) == []


def _content(items: pydicom.Sequence) -> list[pydicom.Dataset]:
    out = []
    for item in items:
        out.append(item)
        out.extend(_content(item.get("ContentSequence", [])))
    return out


def test_sr_content_round_trips(written: dict[ResultKind, Path], rg1_dataset: pydicom.Dataset) -> None:
    sr = pydicom.dcmread(written[ResultKind.SR])
    assert sr.StudyInstanceUID == rg1_dataset.StudyInstanceUID
    assert sr.PatientID == rg1_dataset.PatientID
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED" and sr.PreliminaryFlag == "PRELIMINARY"
    items = _content(sr.ContentSequence)
    scoords = [i for i in items if i.ValueType == "SCOORD"]
    assert scoords, "at least one localised finding"
    for scoord in scoords:
        assert scoord.GraphicType == "POLYLINE"
        points = np.array(scoord.GraphicData, dtype=float).reshape(-1, 2)
        assert len(points) == 5 and (points[0] == points[-1]).all()
        assert (points[:, 0] >= 0).all() and (points[:, 0] <= rg1_dataset.Columns).all()
        assert (points[:, 1] >= 0).all() and (points[:, 1] <= rg1_dataset.Rows).all()
        assert scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == rg1_dataset.SOPInstanceUID
    finding_codes = {i.ConceptCodeSequence[0].CodeValue for i in items if i.ValueType == "CODE"}
    assert {"27925004"} & finding_codes or {"4147007"} & finding_codes
    texts = {i.TextValue for i in items if i.ValueType == "TEXT"}
    assert "baseline" in texts, "algorithm name (TID 4019)"
    assert "Imaging Measurement Report" not in sr.SeriesDescription and "AI RESULT" in sr.SeriesDescription


def test_sc_is_full_size_with_banner_and_source_reference(
    written: dict[ResultKind, Path], rg1_dataset: pydicom.Dataset
) -> None:
    sc = pydicom.dcmread(written[ResultKind.SC])
    assert (sc.Rows, sc.Columns) == (rg1_dataset.Rows, rg1_dataset.Columns)
    assert sc.BurnedInAnnotation == "YES" and sc.PhotometricInterpretation == "RGB"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == rg1_dataset.SOPInstanceUID
    assert sc.SpecificCharacterSet == "ISO_IR 192"
    assert "AI RESULT \u2013 NOT FOR DIAGNOSTIC USE \u2013 baseline" in sc.ImageComments
    assert sc.Manufacturer != rg1_dataset.get("Manufacturer")
    assert sc.SeriesInstanceUID != rg1_dataset.SeriesInstanceUID


def test_gsps_references_source_and_inverts_monochrome1(
    written: dict[ResultKind, Path], rg1_dataset: pydicom.Dataset
) -> None:
    gsps = pydicom.dcmread(written[ResultKind.GSPS])
    referenced = gsps.ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert referenced.ReferencedSOPInstanceUID == rg1_dataset.SOPInstanceUID
    assert gsps.PresentationLUTShape == "INVERSE"
    annotation = gsps.GraphicAnnotationSequence[0]
    assert len(annotation.GraphicObjectSequence) >= 1
    assert any(t.BoundingBoxAnnotationUnits == "DISPLAY" for t in annotation.TextObjectSequence)


def test_encoding_twice_gives_the_same_uids(rg1: Path) -> None:
    _, first = encode(rg1)
    _, second = encode(rg1)
    assert [o.sop_instance_uid for o in first] == [o.sop_instance_uid for o in second]
    assert [o.dataset.SeriesInstanceUID for o in first] == [o.dataset.SeriesInstanceUID for o in second]


def test_lossy_source_marks_the_sc_lossy(rg1_j2ki: Path) -> None:
    _, objects = encode(rg1_j2ki)
    sc = next(o.dataset for o in objects if o.kind is ResultKind.SC)
    assert sc.LossyImageCompression == "01"
