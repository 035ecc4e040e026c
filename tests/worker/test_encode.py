"""worker.encode: every result object × every input: encoded, written, read back, checked for content, and validated by
dciodvfy (0 errors) and, for SRs, PixelMed's DicomSRValidator (0 errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.multival import MultiValue

from config.settings import EquipmentSettings, ResultsSettings
from db.models import ResultKind
from models.baseline import VERSION, BaselineDetector
from models.overlay import layout_for
from models.protocol import ImageResult
from tests.helpers.encode_cases import CASES, analysed, case_sources, content_items, context, write_all
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors
from worker.encode.banner import banner_for
from worker.encode.bundle import encode_not_performed, encode_study
from worker.encode.header import software_version
from worker.encode.inputs import AnalysedImage

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
EQUIPMENT = EquipmentSettings(
    manufacturer="Example Hospital Imaging AI",
    model_name="Chest Node",
    device_serial_number="SN-0042",
    institution_name="Example Hospital",
)
MODALITY_EQUIPMENT = (
    "Manufacturer",
    "ManufacturerModelName",
    "StationName",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "InstitutionAddress",
)


@pytest.fixture(scope="module", params=CASES)
def encoded(
    request: pytest.FixtureRequest, rg1: Path, rg1_j2ki: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[pydicom.Dataset], dict[str, list[Path]]]:
    sources = case_sources(request.param, rg1, rg1_j2ki)
    objects = encode_study(context(analysed(sources), equipment=EQUIPMENT, segmentations=True))
    return sources, write_all(objects, tmp_path_factory.mktemp(request.param))


def test_dciodvfy_reports_no_error_for_any_object(encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]]) -> None:
    sources, paths = encoded
    assert len(paths["SR"]) == 1 and len(paths["SC"]) == len(paths["GSPS"]) == len(paths["SEG"]) == len(sources)
    for path in [p for group in paths.values() for p in group]:
        assert dciodvfy_errors(path) == [], path


def test_pixelmed_validates_the_sr(encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]]) -> None:
    assert pixelmed_sr_errors(encoded[1]["SR"][0]) == []


def test_sr_round_trips_references_codes_coordinates_and_provenance(
    encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]],
) -> None:
    sources, paths = encoded
    sr = pydicom.dcmread(paths["SR"][0])
    source_uids = {str(s.SOPInstanceUID) for s in sources}
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID and sr.PatientID == sources[0].PatientID
    assert sr.PreliminaryFlag == "PRELIMINARY" and sr.VerificationFlag == "UNVERIFIED"
    assert sr.SeriesDescription.startswith("AI RESULT \u2013 NOT FOR DIAGNOSTIC USE")
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    seg_uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths["SEG"]}
    listed = {i.ReferencedSOPInstanceUID for s in evidence for i in s.ReferencedSOPSequence}
    assert listed == source_uids | seg_uids, "the images, and the SEGs whose segments the SR names"
    items = content_items(sr.ContentSequence)
    library = [i for i in items if i.ValueType == "IMAGE"]
    assert {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in library} >= source_uids
    scoords = [i for i in items if i.ValueType == "SCOORD"]
    assert scoords
    by_uid = {str(s.SOPInstanceUID): s for s in sources}
    for scoord in scoords:
        referenced = by_uid[scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID]
        points = np.array(scoord.GraphicData, dtype=float).reshape(-1, 2)
        assert scoord.GraphicType == "POLYLINE" and len(points) == 5 and (points[0] == points[-1]).all()
        assert (
            (points >= 0).all()
            and (points[:, 0] <= referenced.Columns).all()
            and (points[:, 1] <= referenced.Rows).all()
        )
    codes = {
        (i.ConceptCodeSequence[0].CodingSchemeDesignator, i.ConceptCodeSequence[0].CodeValue)
        for i in items
        if i.ValueType == "CODE"
    }
    assert ("SCT", "27925004") in codes or ("SCT", "4147007") in codes
    assert ("SCT", "52101004") in codes, "the overall result says Present"
    texts = {i.TextValue for i in items if i.ValueType == "TEXT"}
    assert {"baseline", VERSION, "weights_sha256=none", "threshold=0.5"} <= texts


def test_each_group_names_its_algorithm_and_its_measurements_do_not_repeat_it(
    encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]],
) -> None:
    """TID 4019 once in every measurement group; the group's covers its Certainty of Finding (TID 300 allows, and
    does not need, one of its own)."""
    sr = pydicom.dcmread(encoded[1]["SR"][0])
    groups = [
        i
        for i in content_items(sr.ContentSequence)
        if i.ValueType == "CONTAINER" and i.ConceptNameCodeSequence[0].CodeValue == "125007"
    ]
    assert groups
    for group in groups:
        children = group.ContentSequence
        names = [c for c in children if c.ValueType == "TEXT" and c.ConceptNameCodeSequence[0].CodeValue == "111001"]
        assert [n.TextValue for n in names] == ["baseline"]
        for measurement in (c for c in children if c.ValueType == "NUM"):
            assert [c.ValueType for c in measurement.get("ContentSequence", [])] in ([], ["SCOORD"])


def test_sc_and_gsps_reference_their_source(encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]]) -> None:
    sources, paths = encoded
    by_uid = {str(s.SOPInstanceUID): s for s in sources}
    for path in paths["SC"]:
        sc = pydicom.dcmread(path)
        source = by_uid[sc.SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert (sc.Rows, sc.Columns) == (source.Rows, source.Columns), "no downscaling"
        assert sc.BurnedInAnnotation == "YES" and "AI RESULT" in sc.ImageComments
        assert sc.SpecificCharacterSet == "ISO_IR 192"
        assert (sc.get("LossyImageCompression") == "01") == (source.get("LossyImageCompression") == "01")
    for path in paths["GSPS"]:
        gsps = pydicom.dcmread(path)
        reference = gsps.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID
        source = by_uid[reference]
        expected = "INVERSE" if source.PhotometricInterpretation == "MONOCHROME1" else "IDENTITY"
        assert gsps.PresentationLUTShape == expected
        assert float(gsps.SoftcopyVOILUTSequence[0].WindowCenter) == float(source.WindowCenter)
        layer = gsps.GraphicAnnotationSequence[0]
        assert layer.GraphicLayer == "AI_FINDINGS" and len(layer.GraphicObjectSequence) >= 1
        texts = [(t.get("BoundingBoxAnnotationUnits"), t.UnformattedTextValue) for t in layer.TextObjectSequence]
        assert ("DISPLAY", banner_for(BaselineDetector().provenance)) in texts, "the banner, in display units"
        labels = [value for units, value in texts if units == "PIXEL"]
        assert len(labels) == len(layer.GraphicObjectSequence), "one label beside each box"
        assert all(value.split()[0] in {"Nodule", "Mass"} for value in labels)


def _string_values(ds: pydicom.Dataset) -> set[str]:
    values: set[str] = set()

    def collect(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.VR != "SQ" and element.value is not None:
            items = element.value if isinstance(element.value, MultiValue) else [element.value]
            values.update(str(v) for v in items)

    ds.walk(collect)
    return values


def test_equipment_is_ours_and_nothing_comes_from_the_modality(
    encoded: tuple[list[pydicom.Dataset], dict[str, list[Path]]],
) -> None:
    sources, paths = encoded
    modality = {str(s.get(k)) for s in sources for k in MODALITY_EQUIPMENT if s.get(k)}
    assert {"Philips Medical Systems", "THORAVISION", "92.00.003"} <= modality, "RG1 names its modality"
    for path in [p for group in paths.values() for p in group]:
        ds = pydicom.dcmread(path)
        assert (ds.Manufacturer, ds.ManufacturerModelName, ds.DeviceSerialNumber) == (
            EQUIPMENT.manufacturer,
            EQUIPMENT.model_name,
            EQUIPMENT.device_serial_number,
        ), path
        assert ds.SoftwareVersions == software_version() and ds.InstitutionName == EQUIPMENT.institution_name
        assert not modality & _string_values(ds), f"{path.name} copies {modality & _string_values(ds)}"


def test_not_performed_sr_validates_and_says_why(rg1: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(rg1, stop_before_pixels=True)
    obj = encode_not_performed([source], "pixel data cannot be decoded", context([]).provenance, EquipmentSettings())
    path = obj.write(tmp_path)
    assert dciodvfy_errors(path) == [] and pixelmed_sr_errors(path) == []
    items = content_items(pydicom.dcmread(path).ContentSequence)
    codes = {i.ConceptCodeSequence[0].CodeValue for i in items if i.ValueType == "CODE"}
    assert {"262008008", "82334004"} <= codes, "Imaging procedure: Not performed; overall Finding: Indeterminate"
    assert any("pixel data cannot be decoded" in i.TextValue for i in items if i.ValueType == "TEXT")
    assert not any(i.ValueType == "SCOORD" for i in items)


def test_superseding_sr_references_its_predecessor(rg1: Path, tmp_path: Path) -> None:
    base = pydicom.dcmread(rg1)
    from tests.helpers.encode_cases import second_view

    first = encode_study(context(analysed([base])))[0]
    follow_up = encode_study(context(analysed([base, second_view(base)])), predecessors=[first.dataset])[0]
    assert follow_up.sop_instance_uid != first.sop_instance_uid
    path = follow_up.write(tmp_path)
    assert dciodvfy_errors(path) == [] and pixelmed_sr_errors(path) == []
    predecessor = pydicom.dcmread(path).PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == first.sop_instance_uid


def test_no_findings_gets_an_sc_and_an_sr_that_say_so(rg1: Path, tmp_path: Path) -> None:
    image = analysed([pydicom.dcmread(rg1)])[0]
    nothing = AnalysedImage(image.source, image.decoded, ImageResult(abnormality_score=0.1, findings=()))
    objects = encode_study(context([nothing]))
    paths = write_all(objects, tmp_path)
    for path in [p for group in paths.values() for p in group]:
        assert dciodvfy_errors(path) == [], path
    assert pixelmed_sr_errors(paths["SR"][0]) == []
    items = content_items(pydicom.dcmread(paths["SR"][0]).ContentSequence)
    assert "272519000" in {i.ConceptCodeSequence[0].CodeValue for i in items if i.ValueType == "CODE"}, "Absent"
    sc = pydicom.dcmread(paths["SC"][0])
    x0, y0, x1, y1 = layout_for(sc.Rows, sc.Columns, ()).legend
    legend = sc.pixel_array[y0:y1, x0:x1]
    assert (legend == 0).all(axis=-1).mean() > 0.5, "a dark legend box"
    text = (legend[:, :, 0] > 200) & (legend[:, :, 1] > 200) & (legend[:, :, 2] < 80)
    assert text.sum() > 200, "with the no-findings statement written in it"


def _without_times(ds: pydicom.Dataset) -> pydicom.Dataset:
    def blank(dataset: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.VR in ("DA", "TM", "DT"):
            element.value = ""

    ds.walk(blank)
    return ds


def test_encoding_twice_is_identical_apart_from_creation_times(rg1: Path) -> None:
    first = encode_study(context(analysed([pydicom.dcmread(rg1)]), segmentations=True))
    second = encode_study(context(analysed([pydicom.dcmread(rg1)]), segmentations=True))
    assert [o.kind.value for o in first] == ["SR", "SC", "GSPS", "SEG"]
    assert [o.sop_instance_uid for o in first] == [o.sop_instance_uid for o in second]
    for a, b in zip(first, second, strict=True):
        assert a.dataset.SeriesInstanceUID == b.dataset.SeriesInstanceUID
        assert _without_times(a.dataset) == _without_times(b.dataset), a.kind


def test_jpeg_sc_is_small_and_marked_lossy(rg1: Path, tmp_path: Path) -> None:
    objects = encode_study(context(analysed([pydicom.dcmread(rg1)]), results=ResultsSettings(sc_compression="jpeg")))
    sc_obj = next(o for o in objects if o.kind is ResultKind.SC)
    path = sc_obj.write(tmp_path)
    assert dciodvfy_errors(path) == []
    sc = pydicom.dcmread(path)
    assert sc.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert sc.LossyImageCompression == "01" and sc.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(sc.LossyImageCompressionRatio) > 5
    assert path.stat().st_size < sc.Rows * sc.Columns * 3 / 5


@pytest.mark.parametrize(
    ("choice", "syntax"), [("jpeg-ls", "1.2.840.10008.1.2.4.80"), ("jpeg2000", "1.2.840.10008.1.2.4.90")]
)
def test_a_lossless_sc_is_smaller_valid_and_the_same_image(rg1: Path, tmp_path: Path, choice: str, syntax: str) -> None:
    images = analysed([pydicom.dcmread(rg1)])
    plain = next(o for o in encode_study(context(images)) if o.kind is ResultKind.SC).write(tmp_path / "plain")
    compressed = encode_study(context(images, results=ResultsSettings(sc_compression=choice)))  # type: ignore[arg-type]
    path = next(o for o in compressed if o.kind is ResultKind.SC).write(tmp_path / choice)
    assert dciodvfy_errors(path) == []
    sc, reference = pydicom.dcmread(path), pydicom.dcmread(plain)
    assert sc.file_meta.TransferSyntaxUID == syntax and "LossyImageCompression" not in sc
    assert path.stat().st_size < plain.stat().st_size / 2
    # pydicom returns a JPEG 2000 image's pixels in RGB: the decoder undoes the reversible colour transform.
    assert (sc.pixel_array == reference.pixel_array).all(), "lossless"


def test_text_needing_utf8_survives(rg1: Path, tmp_path: Path) -> None:
    equipment = EquipmentSettings(
        institution_name="H\u00f4pital Saint-\u00c9loi \u2013 \u6771\u4eac", manufacturer="Acme \u2265 1"
    )
    objects = encode_study(context(analysed([pydicom.dcmread(rg1)]), equipment=equipment))
    for obj in objects:
        path = obj.write(tmp_path)
        ds = pydicom.dcmread(path)
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert ds.InstitutionName == equipment.institution_name and ds.Manufacturer == "Acme \u2265 1"
        assert "?" not in ds.SeriesDescription
        assert dciodvfy_errors(path) == []
