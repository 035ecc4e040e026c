"""The HL7 v2.5.1 ORU^R01 for one result, built and validated with hl7apy, and the reading of its ACK.

Each field is documented in ``docs/conformance.md``. Values are set on leaf components only, so hl7apy escapes any
delimiter in them (a patient name with ``^`` or ``|`` cannot break the message).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.v2_5_1 import ST

from config.outputs import Hl7Endpoint
from db.models import MessagePurpose
from models.codes import CodedConcept
from models.urgency import HL7_ABNORMAL_FLAG, NORMALITY, NORMALITY_OF, Urgency
from worker.clinical.report import PatientHeader, ReportedFinding, ResultReport

Coded = tuple[str, str, str]
"""(code, meaning, coding system) as HL7 writes a CE or CWE."""

VERSION = "2.5.1"
CHEST_XRAY: Coded = ("30745-4", "XR Chest Views", "LN")  # LOINC, also the FHIR DiagnosticReport.code
FINDING: Coded = ("121071", "Finding", "DCM")  # DICOM PS3.16; "DCM" is in HL7 table 0396
RESULT_STATUS_PRELIMINARY = "P"  # HL7 table 0123 (OBR-25) and 0085 (OBX-11): an AI result no one has verified
RESULT_STATUS_CORRECTED = "C"  # table 0123: a correction to results sent before (our retraction)
OBSERVATION_DELETED = "D"  # table 0085: deletes the OBX record (each observation of a retracted result)
PRIORITY_STAT, PRIORITY_ROUTINE = ("S", "Stat", "HL70485"), ("R", "Routine", "HL70485")  # TQ1-9, HL7 table 0485
SEX = {"M": "M", "F": "F", "O": "O"}  # DICOM Patient's Sex to HL7 table 0001; anything else is U


class AckCode(enum.StrEnum):
    ACCEPTED = "AA"
    ERROR = "AE"
    REJECTED = "AR"


@dataclass(frozen=True)
class Ack:
    code: AckCode
    text: str


class AckError(ValueError):
    """The reply is not an ACK to our message."""


def control_id(sr_sop_instance_uid: str, destination: str, purpose: MessagePurpose) -> str:
    """MSH-10: the same result to the same RIS always has the same id (20 characters, the 2.5.1 limit), so a
    receiver that de-duplicates on it files a re-sent message once."""
    digest = hashlib.sha256(f"{sr_sop_instance_uid}|{destination}|{purpose.value}".encode()).hexdigest()
    return digest[:20].upper()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")


def _msh(message: Message, endpoint: Hl7Endpoint, message_id: str) -> None:
    msh = message.msh
    msh.msh_3.hd_1 = endpoint.sending_application
    msh.msh_4.hd_1 = endpoint.sending_facility
    msh.msh_5.hd_1 = endpoint.receiving_application
    msh.msh_6.hd_1 = endpoint.receiving_facility
    msh.msh_7.ts_1 = _now()
    msh.msh_9.msg_1, msh.msh_9.msg_2, msh.msh_9.msg_3 = "ORU", "R01", "ORU_R01"
    msh.msh_10 = message_id
    msh.msh_11.pt_1 = "P"
    msh.msh_12.vid_1 = VERSION
    msh.msh_15, msh.msh_16 = "NE", "NE"  # original mode: the MLLP ACK is the only acknowledgement
    msh.msh_18 = "UNICODE UTF-8"


def _pid(group: object, patient: PatientHeader) -> None:
    pid = group.add_segment("PID")  # type: ignore[attr-defined]
    pid.pid_1 = "1"
    pid.pid_3.cx_1 = patient.patient_id
    if patient.issuer_of_patient_id:
        pid.pid_3.cx_4.hd_1 = patient.issuer_of_patient_id
    pid.pid_3.cx_5 = "MR"
    pid.pid_5.xpn_1.fn_1 = patient.family_name
    pid.pid_5.xpn_2 = patient.given_name
    if patient.birth_date:
        pid.pid_7.ts_1 = patient.birth_date
    pid.pid_8 = SEX.get(patient.sex, "U")


def _obr(group: object, report: ResultReport, patient: PatientHeader) -> None:
    """The order: placer and filler numbers from the source header (filler falls back to the accession number, as
    most RIS file radiology results by it)."""
    obr = group.add_segment("OBR")  # type: ignore[attr-defined]
    obr.obr_1 = "1"
    if patient.placer_order_number:
        obr.obr_2.ei_1 = patient.placer_order_number
    filler = patient.filler_order_number or patient.accession_number
    if filler:
        obr.obr_3.ei_1 = filler
    obr.obr_4.ce_1, obr.obr_4.ce_2, obr.obr_4.ce_3 = CHEST_XRAY
    if patient.study_date_time:
        obr.obr_7.ts_1 = patient.study_date_time
    if patient.accession_number:
        obr.obr_18 = patient.accession_number
    obr.obr_22.ts_1 = report.observed_at.strftime("%Y%m%d%H%M%S+0000")
    obr.obr_24 = "RAD"
    obr.obr_25 = RESULT_STATUS_CORRECTED if report.retracted is not None else RESULT_STATUS_PRELIMINARY


def _obx(group: object, index: int, identifier: Coded, flag: str, value: Coded, text: str, status: str) -> None:
    """OBX-4 groups each finding's observation by its number; the overall result is sub-ID 0."""
    obx = group.add_group("ORU_R01_OBSERVATION").add_segment("OBX")  # type: ignore[attr-defined]
    obx.obx_1 = str(index)
    obx.obx_2 = "CWE"
    obx.obx_3.ce_1, obx.obx_3.ce_2, obx.obx_3.ce_3 = identifier
    obx.obx_4 = str(index - 1)
    obx.obx_5 = _varies_cwe(*value, text)
    if flag:
        obx.obx_8 = flag
    obx.obx_11 = status


def _varies_cwe(code: str, meaning: str, system: str, original_text: str) -> str:
    """OBX-5 is of type "varies", which hl7apy's strict mode will not type by component: the CWE is written here,
    each component escaped by hl7apy's own ST, and the message's validation then parses it back."""
    components = [code, meaning, system, "", "", "", "", "", original_text]
    return "^".join(ST(component).to_er7() for component in components)


def _coded(concept: CodedConcept) -> Coded:
    return concept.value, concept.meaning, concept.scheme


def _finding_text(finding: ReportedFinding) -> str:
    return (
        f"{finding.label}; probability {finding.probability:.2f}; {finding.location}; "
        f"site {finding.site.meaning}; image {finding.source_sop_instance_uid}"
    )


def build_oru(report: ResultReport, patient: PatientHeader, endpoint: Hl7Endpoint, message_id: str) -> str:
    """The ORU^R01 as ER7 (segments separated by CR), validated against the 2.5.1 structures."""
    message = Message("ORU_R01", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    _msh(message, endpoint, message_id)
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    _pid(result.add_group("ORU_R01_PATIENT"), patient)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    _obr(order, report, patient)
    order.add_segment("NTE").nte_3 = report.conclusion[:1000]
    timing = order.add_group("ORU_R01_TIMING_QTY").add_segment("TQ1")
    stat = report.urgency is Urgency.CRITICAL
    timing.tq1_9.cwe_1, timing.tq1_9.cwe_2, timing.tq1_9.cwe_3 = PRIORITY_STAT if stat else PRIORITY_ROUTINE
    overall = _coded(NORMALITY_OF[report.urgency])
    status = OBSERVATION_DELETED if report.retracted is not None else RESULT_STATUS_PRELIMINARY
    flag = HL7_ABNORMAL_FLAG[report.urgency]
    _obx(order, 1, _coded(NORMALITY), flag, overall, report.conclusion[:199], status)
    for index, finding in enumerate(report.findings, start=2):
        flag = "AA" if finding.critical else "A"
        _obx(order, index, FINDING, flag, _coded(finding.code), _finding_text(finding)[:199], status)
    message.validate()
    return str(message.to_er7())


def read_ack(text: str, message_id: str) -> Ack:
    """MSA-1 and the error text (MSA-3, else ERR-8, else ERR-3) of the reply to ``message_id``."""
    try:
        parsed = hl7.parse(text.replace("\n", "\r"))
        msa = parsed.segment("MSA")
    except Exception as exc:
        raise AckError(f"the reply is not an HL7 ACK ({type(exc).__name__})") from exc
    code = str(msa[1]).strip()
    if code in ("CA", "CE", "CR"):  # enhanced-mode commit codes mean the same at this level
        code = "A" + code[1]
    if code not in AckCode.__members__.values():
        raise AckError(f"the ACK has an unknown acknowledgement code {code[:8]!r}")
    if str(msa[2]).strip() != message_id:
        raise AckError("the ACK acknowledges another message (MSA-2 differs from our MSH-10)")
    text_parts = [str(msa[3]) if len(msa) > 3 else ""]
    for err in (s for s in parsed if str(s[0]) == "ERR"):
        text_parts += [str(err[8]) if len(err) > 8 else "", str(err[3]) if len(err) > 3 else ""]
    return Ack(AckCode(code), next((t.strip() for t in text_parts if t.strip()), ""))
