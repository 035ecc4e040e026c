"""The Structured Report: Comprehensive 3D SR, TID 1500 Measurement Report, one TID 1410 group per localised finding."""

from __future__ import annotations

import copy
import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from models.codes import code_for, site_for
from models.protocol import Finding
from worker.encode.common import AnalysedImage, EncodeContext, closed_rectangle, finish
from worker.encode.uids import UIDKind, derive_uid

SR_SERIES_NUMBER = 9001
PROCEDURE_REPORTED = codes.SCT.ImagingProcedure


def _concept(label: str) -> hd.sr.CodedConcept:
    code = code_for(label)
    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _site(label: str) -> hd.sr.FindingSite:
    site = site_for(label)
    return hd.sr.FindingSite(anatomic_location=hd.sr.CodedConcept(site.value, site.scheme, site.meaning))


def _algorithm(context: EncodeContext) -> hd.sr.AlgorithmIdentification:
    provenance = context.provenance
    parameters = [f"{key}={value}" for key, value in sorted(provenance.parameters.items())]
    parameters.append(f"weights_sha256={provenance.weights_sha256 or 'none'}")
    return hd.sr.AlgorithmIdentification(
        name=provenance.name,
        version=provenance.version,
        parameters=parameters,
    )


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


def _finding_group(
    image: AnalysedImage, finding: Finding, index: int, context: EncodeContext
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    assert finding.box is not None
    source_uid = str(image.source.SOPInstanceUID)
    tracking_uid = derive_uid(UIDKind.TRACKING, source_uid, context.provenance.model_id, str(index))
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(closed_rectangle(finding.box.as_tuple()), dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion.from_source_image(image.source),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=f"Finding {index + 1}"),
        referenced_region=region,
        finding_type=_concept(finding.label),
        finding_sites=[_site(finding.label)],
        algorithm_id=_algorithm(context),
        measurements=[
            hd.sr.Measurement(
                name=codes.DCM.CertaintyOfFinding,
                value=round(finding.probability * 100.0, 2),
                unit=codes.UCUM.Percent,
                algorithm_id=_algorithm(context),
            )
        ],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=codes.SCT.Present)],
    )


def _overall_group(context: EncodeContext, abnormal: bool) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The study-level result, so "no finding above threshold" is stated rather than implied by silence."""
    source_uids = sorted(str(i.source.SOPInstanceUID) for i in context.images)
    tracking_uid = derive_uid(UIDKind.TRACKING, *source_uids, context.provenance.model_id, "overall")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier="Overall result"),
        algorithm_id=_algorithm(context),
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                name=codes.DCM.Finding, value=codes.SCT.Present if abnormal else codes.SCT.Absent
            )
        ],
    )


def sr_uids(context: EncodeContext) -> tuple[UID, UID]:
    """(series, instance) UIDs of the study's SR."""
    source_uids = sorted(str(i.source.SOPInstanceUID) for i in context.images)
    series = derive_uid(UIDKind.SR_SERIES, context.study_instance_uid, context.provenance.model_id)
    instance = derive_uid(UIDKind.SR_INSTANCE, *source_uids, context.provenance.model_id)
    return series, instance


def build_sr(context: EncodeContext) -> hd.sr.Comprehensive3DSR:
    groups: list[
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = []
    index = 0
    for image in context.images:
        for finding in image.result.findings:
            if finding.box is not None:
                groups.append(_finding_group(image, finding, index, context))
                index += 1
    abnormal = any(i.result.abnormality_score >= _threshold(context) for i in context.images) or index > 0
    groups.append(_overall_group(context, abnormal))
    device_uid = derive_uid(
        UIDKind.DEVICE, context.equipment.manufacturer, context.equipment.device_serial_number
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid,
            name=context.equipment.model_name,
            manufacturer_name=context.equipment.manufacturer,
            model_name=context.equipment.model_name,
            serial_number=context.equipment.device_serial_number,
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=PROCEDURE_REPORTED,
        imaging_measurements=groups,
        referenced_images=[library_header(i.source) for i in context.images],
    )
    series_uid, instance_uid = sr_uids(context)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[i.source for i in context.images],
        content=report[0],
        series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer=context.equipment.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=context.equipment.institution_name,
    )
    finish(sr, context.images[0].source, context, f"{context.banner} SR")
    return sr


def _threshold(context: EncodeContext) -> float:
    return float(context.provenance.parameters.get("threshold", "0.5"))
