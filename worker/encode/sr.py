"""The Structured Report: Comprehensive 3D SR, TID 1500 Measurement Report.

- One TID 1410 group per localised finding (closed polyline on its source image), one TID 1501 group per finding
  without a location, and one study-level group with the overall result, so "nothing found" is stated, not implied.
- A "not performed" variant for a chest study that could not be analysed, with the reason.
- A follow-up SR lists the SRs it supersedes in the Predecessor Documents Sequence.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, Comprehensive3DSRStorage, SegmentationStorage

from config.settings import EquipmentSettings
from models.codes import CodedConcept, code_for, site_for
from models.protocol import Finding, Provenance
from models.urgency import NORMALITY, NORMALITY_OF, PRIORITY, PRIORITY_OF, Urgency
from worker.encode.geometry import closed_rectangle
from worker.encode.header import algorithm_item, finish
from worker.encode.inputs import AnalysedImage, EncodeContext, finding_identifier
from worker.encode.seg import seg_uids, segment_numbers
from worker.encode.uids import UIDKind, derive_uid, finding_tracking_uid

SOP_CLASS = str(Comprehensive3DSRStorage)
"""Every SR this node makes, results and not-performed alike, is a Comprehensive 3D SR."""

SR_SERIES_NUMBER = 9001
PROCEDURE_REPORTED = codes.SCT.ImagingProcedure
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")

MeasurementGroup = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations


def _concept(label: str) -> hd.sr.CodedConcept:
    code = code_for(label)
    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _site(label: str) -> hd.sr.FindingSite:
    site = site_for(label)
    return hd.sr.FindingSite(anatomic_location=hd.sr.CodedConcept(site.value, site.scheme, site.meaning))


def _algorithm(provenance: Provenance) -> hd.sr.AlgorithmIdentification:
    parameters = [f"{key}={value}" for key, value in sorted(provenance.parameters.items())]
    parameters.append(f"weights_sha256={provenance.weights_sha256 or 'none'}")
    return hd.sr.AlgorithmIdentification(name=provenance.name, version=provenance.version, parameters=parameters)


def library_header(source: Dataset) -> Dataset:
    """A header that highdicom's Image Library can describe without inventing a spacing.

    For CR/DX, highdicom adds the TID 1603 descriptors (patient orientation and ImagerPixelSpacing) and fails when they
    are absent. RG1 has only PixelSpacing "0.000": unknown spacing. The coded modality of the entry comes from the SOP
    Class, and the Modality attribute only selects the TID 1603 branch, so a copy with a neutral Modality keeps the
    entry truthful: modality, rows and columns, and no spacing at all.
    """
    spacing = source.get("ImagerPixelSpacing")
    has_spacing = spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing)
    orientation = source.get("PatientOrientation")
    if has_spacing and orientation is not None and len(orientation) == 2:
        return source
    header = copy.copy(source)
    header.Modality = "OT"
    return header


def _certainty(finding: Finding) -> hd.sr.Measurement:
    """Without an Algorithm Identification of its own (TID 300 allows one): its group's names the same algorithm, and
    repeating it in every measurement made a fifth of the SR's content items and a quarter of its encoding time
    (issue 22)."""
    return hd.sr.Measurement(
        name=codes.DCM.CertaintyOfFinding, value=round(finding.probability * 100.0, 2), unit=codes.UCUM.Percent
    )


def _region_under_measurements(group: MeasurementGroup, region: hd.sr.ImageRegion) -> None:
    """The group's NUMs also name the region they were made on, INFERRED FROM the same SCOORD (TID 300's "Image or
    Spatial Coordinates"). OHIF's SR loader (@cornerstonejs/adapters) takes a group's first NUM and reads the region
    from inside it; the group-level region stays for every other reader. highdicom refuses this in TID 1410, so it is
    added after the group is built; dciodvfy and PixelMed still report no error (``test_encode``)."""
    source = region.ContentSequence[0]
    for item in group[0].ContentSequence:
        if item.ValueType == "NUM":
            coordinates = hd.sr.CoordinatesForMeasurement(
                graphic_type=hd.sr.GraphicTypeValues(region.GraphicType),
                graphic_data=np.asarray(region.GraphicData, dtype=np.float64).reshape(-1, 2),
                source_image=hd.sr.SourceImageForRegion(
                    referenced_sop_class_uid=source.ReferencedSOPSequence[0].ReferencedSOPClassUID,
                    referenced_sop_instance_uid=source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID,
                ),
            )
            item.ContentSequence = [*item.get("ContentSequence", []), coordinates]


def _tracking(source_uid: str, provenance: Provenance, index: int, label: str) -> hd.sr.TrackingIdentifier:
    """The identifier names the detector's own label: where the code is post-coordinated or wider than the label
    ("Pleura finding" for pleural thickening), a reader of the SR still sees what the model said."""
    uid = finding_tracking_uid(source_uid, provenance.output_key, index)
    return hd.sr.TrackingIdentifier(uid=uid, identifier=finding_identifier(index, label))


def _segment_group(
    image: AnalysedImage, finding: Finding, index: int, number: int, context: EncodeContext
) -> MeasurementGroup:
    """The image's finding ``index`` (the study's finding ``number``) again, as TID 1410 with its Referenced
    Segmentation Frame (121214) in the image's SEG: the same Tracking Identifier and UID as the group with the region
    (readers that track findings merge the two; OHIF does). TID 1410 takes a region or a segment, never both in one
    group (PixelMed holds to it), hence a group of its own."""
    _, seg_uid = seg_uids(image, context)
    segment = segment_numbers(image)[index]
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(str(image.source.SOPInstanceUID), context.provenance, number, finding.label),
        referenced_segment=hd.sr.ReferencedSegmentationFrame(
            sop_class_uid=SegmentationStorage,
            sop_instance_uid=seg_uid,
            frame_number=segment,  # one frame a segment, in segment order (worker.encode.seg)
            segment_number=segment,
            source_image=hd.sr.SourceImageForSegmentation(
                str(image.source.SOPClassUID), str(image.source.SOPInstanceUID)
            ),
        ),
        algorithm_id=_algorithm(context.provenance),
    )
    for item in group[0].ContentSequence:
        if item.ValueType == "IMAGE" and "ReferencedSOPSequence" in item:
            for reference in item.ReferencedSOPSequence:
                # The frame names the segment (one frame a segment); with both numbers dciodvfy reports an error.
                if "ReferencedFrameNumber" in reference and "ReferencedSegmentNumber" in reference:
                    del reference.ReferencedSegmentNumber
    return group


def _finding_group(image: AnalysedImage, finding: Finding, index: int, provenance: Provenance) -> MeasurementGroup:
    """TID 1410 with a closed polyline when the finding has a box; TID 1501 on the whole image when it has none.

    The group's one (121071, DCM, "Finding") item is its finding type: a reader that takes the first such item (OHIF
    does) gets the finding, never a "Present" beside it. The group's existence states the finding present."""
    tracking = _tracking(str(image.source.SOPInstanceUID), provenance, index, finding.label)
    finding_type = _concept(finding.label)
    sites = [_site(finding.label)]
    algorithm = _algorithm(provenance)
    measurements = [_certainty(finding)]
    if finding.box is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            finding_type=finding_type,
            finding_sites=sites,
            algorithm_id=algorithm,
            measurements=measurements,
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(image.source)],
        )
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(closed_rectangle(finding.box.as_tuple()), dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion.from_source_image(image.source),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_region=region,
        finding_type=finding_type,
        finding_sites=sites,
        algorithm_id=algorithm,
        measurements=measurements,
    )
    _region_under_measurements(group, region)
    return group


def _coded(concept: CodedConcept) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(concept.value, concept.scheme, concept.meaning)


def _overall_group(
    source_uids: Sequence[str], provenance: Provenance, value: hd.sr.CodedConcept, urgency: Urgency
) -> MeasurementGroup:
    """The study-level result: Finding Present (abnormal), Absent (nothing above threshold) or Indeterminate, then the
    urgency as Normality (DICOM CID 222) and Priority (SNOMED CT): critical is Abnormal with High priority."""
    tracking_uid = derive_uid(UIDKind.TRACKING, *sorted(source_uids), provenance.output_key, "overall")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier="Overall result"),
        algorithm_id=_algorithm(provenance),
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=value),
            hd.sr.QualitativeEvaluation(name=_coded(NORMALITY), value=_coded(NORMALITY_OF[urgency])),
            hd.sr.QualitativeEvaluation(name=_coded(PRIORITY), value=_coded(PRIORITY_OF[urgency])),
        ],
    )


def _observer(equipment: EquipmentSettings) -> hd.sr.ObservationContext:
    """A device observer whose UID is stable across runs and releases: it names this installation, not a job."""
    device_uid = derive_uid(UIDKind.DEVICE, equipment.manufacturer, equipment.device_serial_number)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid,
            name=equipment.model_name,
            manufacturer_name=equipment.manufacturer,
            model_name=equipment.model_name,
            serial_number=equipment.device_serial_number,
        ),
    )
    return hd.sr.ObservationContext(observer_device_context=observer)


def sr_uids(study_uid: str, source_uids: Sequence[str], provenance: Provenance, variant: str = "") -> tuple[UID, UID]:
    """(series, instance) UIDs of a study's SR: the instance follows the set of the study's inputs and the model."""
    series = derive_uid(UIDKind.SR_SERIES, study_uid, provenance.output_key)
    instance = derive_uid(UIDKind.SR_INSTANCE, *sorted(source_uids), provenance.output_key, variant)
    return series, instance


def _document(
    report: hd.sr.MeasurementReport,
    sources: Sequence[Dataset],
    uids: tuple[UID, UID],
    equipment: EquipmentSettings,
    predecessors: Sequence[Dataset],
    description: str,
    provenance: Provenance,
) -> hd.sr.Comprehensive3DSR:
    content = report[0]
    if not isinstance(content, hd.sr.ContentItem):
        raise TypeError("a measurement report's root is a highdicom content item")
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(sources),
        content=_stand_in(content),
        series_instance_uid=uids[0],
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=uids[1],
        instance_number=1,
        manufacturer=equipment.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=equipment.institution_name,
        # Never itself: an SR made again from the same inputs has the same UID and supersedes nothing.
        previous_versions=[p for p in predecessors if str(p.SOPInstanceUID) != uids[1]] or None,
    )
    for tag, value in content.items():
        sr[tag] = value
    sr._content = hd.sr.ContentSequence([content], is_root=True)  # the typed view highdicom keeps (``sr.content``)
    finish(sr, sources[0], equipment, description, algorithm_item(provenance, equipment))
    return sr


def _stand_in(root: Dataset) -> Dataset:
    """The document's root container without its children, for highdicom's constructor.

    The constructor deep-copies the content tree it is given and parses the copy again, only to keep a typed view of
    it, then searches the tree for references to check against the evidence: about 60 % of an SR's encoding time for
    a one-image study (issue 22). Our tree is made of highdicom content items already and references only the
    evidence we pass, so the document is built around this stand-in and then given the tree itself. Every evidence
    dataset is listed either way; ``tests/worker/test_encode_sr_copy.py`` compares the bytes with highdicom's path.
    """
    stand_in = Dataset()
    for element in root:
        if element.keyword != "ContentSequence":
            stand_in.add(copy.deepcopy(element))
    stand_in.ContentSequence = []
    return stand_in


def build_sr(
    context: EncodeContext, predecessors: Sequence[Dataset] = (), segmentations: Sequence[Dataset] = ()
) -> hd.sr.Comprehensive3DSR:
    provenance = context.provenance
    groups: list[MeasurementGroup] = []
    for image in context.images:
        for index, finding in enumerate(image.result.findings):
            number = context.finding_number(image, index)
            groups.append(_finding_group(image, finding, number, provenance))
            if context.segmentations and finding.box is not None:
                groups.append(_segment_group(image, finding, index, number, context))
    urgency = context.triage.urgency
    abnormal = urgency is not Urgency.NO_FINDING
    source_uids = [str(i.source.SOPInstanceUID) for i in context.images]
    present = codes.SCT.Present if abnormal else codes.SCT.Absent
    groups.append(_overall_group(source_uids, provenance, present, urgency))
    report = hd.sr.MeasurementReport(
        observation_context=_observer(context.equipment),
        procedure_reported=PROCEDURE_REPORTED,
        imaging_measurements=groups,
        referenced_images=[library_header(i.source) for i in context.images],
    )
    uids = sr_uids(context.study_instance_uid, context.input_uids, provenance)
    sources = [i.source for i in context.images]
    evidence = [*sources, *segmentations]
    return _document(report, evidence, uids, context.equipment, predecessors, f"{context.banner} SR", provenance)


def build_not_performed_sr(
    sources: Sequence[Dataset],
    reason: str,
    provenance: Provenance,
    equipment: EquipmentSettings,
    predecessors: Sequence[Dataset] = (),
    study_inputs: Sequence[str] = (),
) -> hd.sr.Comprehensive3DSR:
    """An SR stating that AI analysis was not performed, and why, so that silence is never read as normal."""
    source_uids = [str(s.SOPInstanceUID) for s in sources]
    report = hd.sr.MeasurementReport(
        observation_context=_observer(equipment),
        procedure_reported=PROCEDURE_REPORTED,
        imaging_measurements=[_overall_group(source_uids, provenance, codes.SCT.Indeterminate, Urgency.NOT_PERFORMED)],
        referenced_images=[library_header(s) for s in sources],
    )
    statement = hd.sr.ContainerContentItem(name=QUALITATIVE_EVALUATIONS, relationship_type="CONTAINS")
    statement.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.CodeContentItem(name=PROCEDURE_REPORTED, value=codes.SCT.NotPerformed, relationship_type="CONTAINS"),
            hd.sr.TextContentItem(
                name=codes.DCM.Comment,
                value=f"AI analysis not performed: {reason}"[:1024],
                relationship_type="CONTAINS",
            ),
        ]
    )
    report[0].ContentSequence.append(statement)
    inputs = list(study_inputs) or source_uids
    uids = sr_uids(str(sources[0].StudyInstanceUID), inputs, provenance, variant="not-performed")
    description = f"AI RESULT \u2013 NOT PERFORMED \u2013 {provenance.name} {provenance.version}"
    return _document(report, sources, uids, equipment, predecessors, description, provenance)
