"""The FHIR R4 transaction Bundle for one result, built and validated with ``fhir.resources``.

fhir.resources ships FHIR R5 and R4B (4.3) models. The R4B models of the resources used here (Bundle, Patient,
ImagingStudy, Device, Observation, DiagnosticReport) have the same elements and cardinalities as R4 (4.0.1), so a
Bundle valid under them is a valid R4 Bundle. Every entry is a conditional create on a deterministic identifier: a
re-sent Bundle (a retry whose response was lost) creates nothing twice on a server that honours ``ifNoneExist``.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from models.codes import CodedConcept
from models.urgency import HIGH_PRIORITY, NORMALITY_OF, Urgency
from worker.clinical.hl7 import CHEST_XRAY
from worker.clinical.report import PatientHeader, ReportedFinding, ResultReport
from worker.encode.uids import UIDKind, derive_uid

SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "LN": "http://loinc.org",
}
DICOM_UID = "urn:dicom:uid"
URI = "urn:ietf:rfc:3986"
CATEGORY_RADIOLOGY = {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
CATEGORY_IMAGING = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "imaging",
    "display": "Imaging",
}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SEX = {"M": "male", "F": "female", "O": "other"}


def _urn(*parts: str) -> str:
    """The project's one rule for derived UIDs (``worker.encode.uids``), written as a URN for FHIR."""
    return f"urn:oid:{derive_uid(UIDKind.FHIR, *parts)}"


def _coding(concept: CodedConcept) -> dict[str, str]:
    return {"system": SYSTEMS[concept.scheme], "code": concept.value, "display": concept.meaning}


def _entry(full_url: str, resource: dict[str, Any], condition: str) -> dict[str, Any]:
    kind = resource["resourceType"]
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": kind, "ifNoneExist": condition},
    }


def _update(full_url: str, resource: dict[str, Any], condition: str) -> dict[str, Any]:
    """A conditional update: what a retraction does to the report and observations it sent before."""
    kind = resource["resourceType"]
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "PUT", "url": f"{kind}?{condition}"}}


def _patient(patient: PatientHeader, system: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": patient.patient_id or "unknown"}],
        "gender": SEX.get(patient.sex, "unknown"),
    }
    if patient.family_name or patient.given_name:
        name: dict[str, Any] = {"family": patient.family_name} if patient.family_name else {}
        if patient.given_name:
            name["given"] = [patient.given_name]
        resource["name"] = [name]
    if len(patient.birth_date) == 8 and patient.birth_date.isdigit():
        b = patient.birth_date
        resource["birthDate"] = f"{b[:4]}-{b[4:6]}-{b[6:]}"
    return resource


def _device(report: ResultReport, device_url: str) -> dict[str, Any]:
    algorithm = report.algorithm
    properties = [{"type": {"text": "weights sha256"}, "valueCode": [{"text": algorithm.weights_sha256 or "none"}]}]
    return {
        "resourceType": "Device",
        "identifier": [{"system": URI, "value": device_url}],
        "deviceName": [{"name": algorithm.name, "type": "model-name"}],
        "version": [{"value": algorithm.version}],
        "property": properties,
        "type": {"text": "AI chest radiograph detector"},
    }


def _observation(finding: ReportedFinding, refs: dict[str, str], identifier: str) -> dict[str, Any]:
    interpretation = "AA" if finding.critical else "A"
    return {
        "resourceType": "Observation",
        "identifier": [{"system": URI, "value": identifier}],
        "status": "preliminary",
        "category": [{"coding": [CATEGORY_IMAGING]}],
        "code": {"coding": [{"system": SYSTEMS["DCM"], "code": "121071", "display": "Finding"}]},
        "subject": {"reference": refs["patient"]},
        "valueCodeableConcept": {"coding": [_coding(finding.code)], "text": finding.label},
        "bodySite": {"coding": [_coding(finding.site)]},
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": interpretation}]}],
        "device": {"reference": refs["device"]},
        "derivedFrom": [{"reference": refs["study"]}],
        "note": [{"text": f"{finding.location}; image {finding.source_sop_instance_uid}"}],
        "component": [
            {
                "code": {"coding": [{"system": SYSTEMS["DCM"], "code": "111012", "display": "Certainty of Finding"}]},
                "valueQuantity": {
                    "value": round(finding.probability * 100.0, 2),
                    "unit": "%",
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            },
            {
                "code": {"coding": [{"system": SYSTEMS["DCM"], "code": "111030", "display": "Image Region"}]},
                "valueString": finding.location,
            },
        ],
    }


def _conclusion_codes(urgency: Urgency) -> list[dict[str, Any]]:
    codes = [{"coding": [_coding(NORMALITY_OF[urgency])], "text": urgency.value}]
    if urgency is Urgency.CRITICAL:
        codes.append({"coding": [_coding(HIGH_PRIORITY)], "text": "critical result"})
    return codes


def build_bundle(report: ResultReport, patient: PatientHeader, patient_system: str) -> dict[str, Any]:
    """The transaction Bundle as JSON-ready data, validated by parsing it with fhir.resources."""
    sr = report.sr_sop_instance_uid
    refs = {"patient": _urn(sr, "patient"), "study": _urn(sr, "study"), "device": _urn(sr, "device")}
    device_id = _urn("device", report.algorithm.name, report.algorithm.version, report.algorithm.weights_sha256 or "")
    study_uid = f"urn:oid:{report.study_instance_uid}"
    status = "entered-in-error" if report.retracted is not None else "preliminary"
    observations = [
        (_urn(sr, "observation", str(index)), _observation(finding, refs, _urn(sr, "observation-id", str(index))))
        for index, finding in enumerate(report.findings)
    ]
    for _, observation in observations:
        observation["status"] = status
    diagnostic_report = {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{sr}"}],
        "status": status,
        "category": [{"coding": [CATEGORY_RADIOLOGY]}],
        "code": {"coding": [{"system": SYSTEMS["LN"], "code": CHEST_XRAY[0], "display": CHEST_XRAY[1]}]},
        "subject": {"reference": refs["patient"]},
        "effectiveDateTime": report.observed_at.isoformat(),
        "issued": report.observed_at.isoformat(),
        "result": [{"reference": url} for url, _ in observations],
        "imagingStudy": [{"reference": refs["study"]}],
        "conclusion": report.conclusion,
        "conclusionCode": _conclusion_codes(report.urgency),
    }
    patient_resource = _patient(patient, patient_system)
    write = _update if report.retracted is not None else _entry
    entries = [
        _entry(
            refs["patient"],
            patient_resource,
            f"identifier={patient_system}|{patient_resource['identifier'][0]['value']}",
        ),
        _entry(
            refs["study"],
            {
                "resourceType": "ImagingStudy",
                "identifier": [{"system": DICOM_UID, "value": study_uid}],
                "status": "available",
                "subject": {"reference": refs["patient"]},
            },
            f"identifier={DICOM_UID}|{study_uid}",
        ),
        _entry(refs["device"], _device(report, device_id), f"identifier={URI}|{device_id}"),
        *(write(url, obs, f"identifier={URI}|{obs['identifier'][0]['value']}") for url, obs in observations),
        write(_urn(sr, "report"), diagnostic_report, f"identifier={DICOM_UID}|urn:oid:{sr}"),
    ]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": {"system": URI, "value": _urn(sr, "bundle")},
        "entry": entries,
    }
    Bundle.model_validate(bundle)  # raises on anything the R4B structures do not allow
    return bundle
