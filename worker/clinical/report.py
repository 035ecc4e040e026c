"""What every clinical message says about one result, gathered at send time.

``ResultReport`` holds no patient data: it comes from the database and our own SR. ``PatientHeader`` holds the
identifiers a RIS or EHR needs to file the result; it is read from the spooled source header at send time (or our SR,
which copies the source's Patient and Study modules, once retention has removed the source), passed to the message
builder, and never stored, logged or put in an error text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy.orm import Session

from db import results, studies
from db.jobs import get_job
from db.models import JobState
from dicom_node.rejection import referenced_instances
from models.codes import CodedConcept, code_for, site_for
from models.imaging import read_dataset
from models.protocol import ImageResult, Provenance
from models.urgency import Urgency, is_critical, triage

ALGORITHM_NAME = "111001"
ALGORITHM_VERSION = "111003"
ALGORITHM_PARAMETERS = "111002"


class SourceUnavailableError(Exception):
    """Neither the source header nor our SR can be read: the message cannot name its patient."""


@dataclass(frozen=True)
class ReportedFinding:
    label: str
    code: CodedConcept
    site: CodedConcept
    probability: float
    box: tuple[float, float, float, float] | None
    source_sop_instance_uid: str
    critical: bool

    @property
    def location(self) -> str:
        """The box as text, in source pixels: what OBX and Observation carry beside the coded label."""
        if self.box is None:
            return "whole image"
        x_min, y_min, x_max, y_max = self.box
        return f"box x {x_min:.0f}-{x_max:.0f}, y {y_min:.0f}-{y_max:.0f} px"


@dataclass(frozen=True)
class Algorithm:
    name: str
    version: str
    weights_sha256: str | None


@dataclass(frozen=True)
class ResultReport:
    job_id: int
    study_id: int
    urgency: Urgency
    findings: tuple[ReportedFinding, ...]
    study_instance_uid: str
    sr_sop_instance_uid: str
    sr_series_instance_uid: str
    source_sop_instance_uids: tuple[str, ...]
    observed_at: datetime
    algorithm: Algorithm
    reason: str | None
    """Why analysis was not performed, for a not-performed result."""
    retracted: str | None = None
    """Why the result was withdrawn, once it was: its messages then delete or void what was sent."""

    @property
    def critical_labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.label for f in self.findings if f.critical))

    @property
    def conclusion(self) -> str:
        """One line a clinician reads first (no PHI): the urgency and the labels found."""
        if self.retracted is not None:
            return f"AI result withdrawn: {self.retracted}"
        if self.urgency is Urgency.NOT_PERFORMED:
            return f"AI analysis not performed: {self.reason or 'see the SR'}"
        labels = ", ".join(dict.fromkeys(f.label for f in self.findings)) or "no finding above threshold"
        if self.urgency is Urgency.CRITICAL:
            return f"CRITICAL: {', '.join(self.critical_labels)}. AI findings: {labels}"
        return f"AI findings: {labels}"


@dataclass(frozen=True)
class PatientHeader:
    """Patient data: never stored, logged or written into an error text."""

    patient_id: str
    issuer_of_patient_id: str
    family_name: str
    given_name: str
    birth_date: str
    sex: str
    accession_number: str
    placer_order_number: str
    filler_order_number: str
    study_date_time: str

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PatientHeader:
        name = ds.get("PatientName")
        return cls(
            patient_id=str(ds.get("PatientID", "") or ""),
            issuer_of_patient_id=str(ds.get("IssuerOfPatientID", "") or ""),
            family_name=str(getattr(name, "family_name", "") or ""),
            given_name=str(getattr(name, "given_name", "") or ""),
            birth_date=str(ds.get("PatientBirthDate", "") or ""),
            sex=str(ds.get("PatientSex", "") or ""),
            accession_number=str(ds.get("AccessionNumber", "") or ""),
            placer_order_number=str(ds.get("PlacerOrderNumberImagingServiceRequest", "") or ""),
            filler_order_number=str(ds.get("FillerOrderNumberImagingServiceRequest", "") or ""),
            study_date_time=f"{ds.get('StudyDate', '') or ''}{ds.get('StudyTime', '') or ''}".split(".")[0],
        )


def _content_items(items: Sequence[Dataset]) -> Iterator[Dataset]:
    for item in items:
        yield item
        yield from _content_items(item.get("ContentSequence", []))


def _algorithm(sr: Dataset) -> Algorithm:
    """TID 4019 of the SR: the algorithm's name, version and the weights' sha256 among its parameters. Every group
    repeats it, so the walk stops at the end of the first (the weights' sha256 is its last parameter)."""
    found: dict[str, list[str]] = {}
    for item in _content_items(sr.get("ContentSequence", [])):
        concept = item.get("ConceptNameCodeSequence")
        if concept and item.get("ValueType") == "TEXT":
            found.setdefault(str(concept[0].CodeValue), []).append(str(item.TextValue))
            if str(item.TextValue).startswith("weights_sha256="):
                break
    parameters = dict(p.split("=", 1) for p in found.get(ALGORITHM_PARAMETERS, []) if "=" in p)
    sha = parameters.get("weights_sha256")
    return Algorithm(
        name=(found.get(ALGORITHM_NAME) or ["unknown"])[0],
        version=(found.get(ALGORITHM_VERSION) or ["unknown"])[0],
        weights_sha256=None if sha in (None, "none") else sha,
    )


def _observed_at(sr: Dataset) -> datetime:
    text = f"{sr.get('ContentDate', '')}{str(sr.get('ContentTime', ''))[:6]}"
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


def _reported(
    label: str,
    probability: float,
    box: tuple[float, float, float, float] | None,
    source_uid: str,
    study_is_critical: bool,
    thresholds: Mapping[str, float],
) -> ReportedFinding:
    return ReportedFinding(
        label=label,
        code=code_for(label),
        site=site_for(label),
        probability=probability,
        box=box,
        source_sop_instance_uid=source_uid,
        critical=study_is_critical and is_critical(label, probability, thresholds),
    )


def load_report(session: Session, job_id: int, sr_path: Path, critical_thresholds: dict[str, float]) -> ResultReport:
    """The report for a job's SR; the caller holds the session."""
    sr = read_dataset(sr_path, header_only=True)
    job = get_job(session, job_id)
    urgency = Urgency(job.urgency.value) if job.urgency is not None else Urgency.NOT_PERFORMED
    sources = results.finding_source_uids(session, job_id)
    critical = urgency is Urgency.CRITICAL
    findings = tuple(
        _reported(f.label, f.probability, f.box, sources[f.instance_id], critical, critical_thresholds)
        for f in results.job_findings(session, job_id)
    )
    return ResultReport(
        job_id=job_id,
        study_id=job.study_id,
        urgency=urgency,
        findings=findings,
        study_instance_uid=str(sr.StudyInstanceUID),
        sr_sop_instance_uid=str(sr.SOPInstanceUID),
        sr_series_instance_uid=str(sr.SeriesInstanceUID),
        source_sop_instance_uids=tuple(dict.fromkeys(referenced_instances(sr))),
        observed_at=_observed_at(sr),
        algorithm=_algorithm(sr),
        reason=job.reason if urgency is Urgency.NOT_PERFORMED else None,
        retracted=job.reason if job.state is JobState.RETRACTED else None,
    )


def report_for_image(
    source: Dataset, result: ImageResult, provenance: Provenance, thresholds: Mapping[str, float]
) -> ResultReport:
    """The report the node would send for a one-image study, made without a database: ``cxr detect --fhir``. Its
    identifiers are those the node derives for the same image and model."""
    from worker.encode.sr import sr_uids  # the encoder's own UIDs; imported here so messages need no highdicom

    abnormal_threshold = float(provenance.parameters.get("threshold", "0.5"))
    triaged = triage([result], thresholds, abnormal_threshold)
    sop_uid, study_uid = str(source.SOPInstanceUID), str(source.StudyInstanceUID)
    series_uid, instance_uid = sr_uids(study_uid, [sop_uid], provenance)
    critical = triaged.urgency is Urgency.CRITICAL
    findings = tuple(
        _reported(f.label, f.probability, f.box.as_tuple() if f.box else None, sop_uid, critical, thresholds)
        for f in result.findings
    )
    return ResultReport(
        job_id=0,
        study_id=0,
        urgency=triaged.urgency,
        findings=findings,
        study_instance_uid=study_uid,
        sr_sop_instance_uid=str(instance_uid),
        sr_series_instance_uid=str(series_uid),
        source_sop_instance_uids=(sop_uid,),
        observed_at=datetime.now(UTC),
        algorithm=Algorithm(provenance.name, provenance.version, provenance.weights_sha256),
        reason=None,
    )


def read_patient(session: Session, report: ResultReport, sr_path: Path) -> PatientHeader:
    """The patient's identifiers from a spooled source header, else from our SR; read at send time only."""
    for uid in report.source_sop_instance_uids:
        location = studies.instance_location(session, uid)
        if location is not None and location.spool_path.is_file():
            try:
                return PatientHeader.from_dataset(read_dataset(location.spool_path, header_only=True))
            except Exception:  # a damaged spool file: fall back to our SR below
                continue
    try:
        return PatientHeader.from_dataset(read_dataset(sr_path, header_only=True))
    except Exception as exc:
        raise SourceUnavailableError(
            f"neither the source header nor the SR of job {report.job_id} is readable"
        ) from exc
