"""The one table from finding labels to coded concepts, and from public models' label names to ours.

Every label a detector may emit must map to a code here; a detector with an unmapped label fails at load, never at
encode time. Each code's source is noted beside it:

- [dicom]  pydicom's copy of the DICOM code tables (``pydicom.sr.codedict``), i.e. DICOM PS3.16;
- [cid6101] DICOM PS3.16 CID 6101 "Chest Finding or Feature" (DCM codes);
- [notes]  checked with dciodvfy and PixelMed on RG1 (``docs/dicom-outputs.md``);
- [umls]   the NLM UMLS SNOMEDCT_US source;
- [hl7]    an HL7 FHIR value set that lists the SNOMED CT concept with its fully specified name.

Cardiomegaly: SNOMED CT 8186001 "Cardiomegaly" [notes]. DICOM CID 12248 lists 287272002 for the same idea; this
table uses 8186001 everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CodedConcept:
    scheme: str
    value: str
    meaning: str


class FindingLabel(enum.StrEnum):
    NODULE = "Nodule"
    MASS = "Mass"
    PNEUMOTHORAX = "Pneumothorax"
    EFFUSION = "Effusion"
    CONSOLIDATION = "Consolidation"
    CARDIOMEGALY = "Cardiomegaly"
    ATELECTASIS = "Atelectasis"
    INFILTRATION = "Infiltration"
    EDEMA = "Edema"
    EMPHYSEMA = "Emphysema"
    FIBROSIS = "Fibrosis"
    PNEUMONIA = "Pneumonia"
    HERNIA = "Hernia"
    LUNG_LESION = "Lung Lesion"
    FRACTURE = "Fracture"
    LUNG_OPACITY = "Lung Opacity"
    CALCIFICATION = "Calcification"
    ILD = "ILD"
    OTHER_LESION = "Other lesion"
    COVID19 = "COVID-19"
    PLEURAL_THICKENING = "Pleural thickening"
    ENLARGED_CARDIOMEDIASTINUM = "Enlarged cardiomediastinum"
    AORTIC_ENLARGEMENT = "Aortic enlargement"


FINDING_CODES: dict[FindingLabel, CodedConcept] = {
    FindingLabel.NODULE: CodedConcept("SCT", "27925004", "Nodule"),  # [dicom] [notes]
    FindingLabel.MASS: CodedConcept("SCT", "4147007", "Mass"),  # [dicom] [notes]
    FindingLabel.PNEUMOTHORAX: CodedConcept("SCT", "36118008", "Pneumothorax"),  # [dicom] [notes]
    FindingLabel.EFFUSION: CodedConcept("SCT", "60046008", "Pleural effusion"),  # [dicom] [notes]
    FindingLabel.CONSOLIDATION: CodedConcept("SCT", "95436008", "Lung consolidation"),  # [notes]
    FindingLabel.CARDIOMEGALY: CodedConcept("SCT", "8186001", "Cardiomegaly"),  # [notes]
    FindingLabel.ATELECTASIS: CodedConcept("SCT", "46621007", "Atelectasis"),  # [notes]
    FindingLabel.INFILTRATION: CodedConcept("SCT", "409609008", "Radiologic infiltrate of lung"),  # [umls]
    FindingLabel.EDEMA: CodedConcept("SCT", "19242006", "Pulmonary edema"),  # [dicom]
    FindingLabel.EMPHYSEMA: CodedConcept("SCT", "87433001", "Pulmonary emphysema"),  # [hl7]
    FindingLabel.FIBROSIS: CodedConcept("SCT", "51615001", "Pulmonary fibrosis"),  # [hl7]
    FindingLabel.PNEUMONIA: CodedConcept("SCT", "233604007", "Pneumonia"),  # [hl7]
    FindingLabel.HERNIA: CodedConcept("SCT", "84089009", "Hiatal hernia"),  # [hl7]; NIH "Hernia" is hiatal
    FindingLabel.LUNG_LESION: CodedConcept("SCT", "52988006", "Lesion"),  # [dicom]; the site says "Lung"
    FindingLabel.FRACTURE: CodedConcept("SCT", "125605004", "Fracture of bone"),  # [hl7]
    FindingLabel.LUNG_OPACITY: CodedConcept("DCM", "112033", "Abnormal opacity"),  # [cid6101]
    FindingLabel.CALCIFICATION: CodedConcept("DCM", "112063", "Abnormal calcifications"),  # [cid6101]
    FindingLabel.ILD: CodedConcept("SCT", "233703007", "Interstitial lung disease"),  # [hl7]
    FindingLabel.OTHER_LESION: CodedConcept("SCT", "52988006", "Lesion"),  # [dicom]
    # [hl7] FSN "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)", over LO's 64 characters
    FindingLabel.COVID19: CodedConcept("SCT", "840539006", "Disease caused by SARS-CoV-2"),
    # [hl7] "Pleura finding (finding)" (HL7 Lithuania lung-screening IG, IncidentalFindingVS): wider than thickening,
    # the nearest concept verified; the overlay, the GSPS and the SR tracking identifier still say "Pleural thickening".
    FindingLabel.PLEURAL_THICKENING: CodedConcept("SCT", "301256004", "Pleura finding"),
    # [dicom] CID 6118 Size Descriptor, at the Mediastinum: an enlarged cardiomediastinal silhouette.
    FindingLabel.ENLARGED_CARDIOMEDIASTINUM: CodedConcept("SCT", "260376009", "Enlarged"),
    # [dicom] CID 3810 Vascular Morphology, at the Aorta: aortic dilatation, without claiming an aneurysm (67362008).
    FindingLabel.AORTIC_ENLARGEMENT: CodedConcept("SCT", "25322007", "Dilatation"),
}

# Where each finding lies (SNOMED CT body structures [dicom]).
LUNG = CodedConcept("SCT", "39607008", "Lung")
HEART = CodedConcept("SCT", "80891009", "Heart")
PLEURA = CodedConcept("SCT", "3120008", "Pleura")
THORAX = CodedConcept("SCT", "816094009", "Thorax")
BONE = CodedConcept("SCT", "272673000", "Bone")
STOMACH = CodedConcept("SCT", "69695003", "Stomach")
MEDIASTINUM = CodedConcept("SCT", "72410000", "Mediastinum")  # [dicom] CID 6129
AORTA = CodedConcept("SCT", "15825003", "Aorta")  # [dicom] CID 6129

FINDING_SITES: dict[FindingLabel, CodedConcept] = {
    FindingLabel.NODULE: LUNG,
    FindingLabel.MASS: LUNG,
    FindingLabel.PNEUMOTHORAX: PLEURA,
    FindingLabel.EFFUSION: PLEURA,
    FindingLabel.CONSOLIDATION: LUNG,
    FindingLabel.CARDIOMEGALY: HEART,
    FindingLabel.ATELECTASIS: LUNG,
    FindingLabel.INFILTRATION: LUNG,
    FindingLabel.EDEMA: LUNG,
    FindingLabel.EMPHYSEMA: LUNG,
    FindingLabel.FIBROSIS: LUNG,
    FindingLabel.PNEUMONIA: LUNG,
    FindingLabel.HERNIA: STOMACH,
    FindingLabel.LUNG_LESION: LUNG,
    FindingLabel.FRACTURE: BONE,
    FindingLabel.LUNG_OPACITY: LUNG,
    FindingLabel.CALCIFICATION: THORAX,
    FindingLabel.ILD: LUNG,
    FindingLabel.OTHER_LESION: THORAX,
    FindingLabel.COVID19: LUNG,
    FindingLabel.PLEURAL_THICKENING: PLEURA,
    FindingLabel.ENLARGED_CARDIOMEDIASTINUM: MEDIASTINUM,
    FindingLabel.AORTIC_ENLARGEMENT: AORTA,
}

# Public models' label names → ours. ``None`` would mean "trained on, not reported" (see UNMAPPED).
XRV_LABELS: dict[str, FindingLabel | None] = {
    "Atelectasis": FindingLabel.ATELECTASIS,
    "Consolidation": FindingLabel.CONSOLIDATION,
    "Infiltration": FindingLabel.INFILTRATION,
    "Pneumothorax": FindingLabel.PNEUMOTHORAX,
    "Edema": FindingLabel.EDEMA,
    "Emphysema": FindingLabel.EMPHYSEMA,
    "Fibrosis": FindingLabel.FIBROSIS,
    "Effusion": FindingLabel.EFFUSION,
    "Pneumonia": FindingLabel.PNEUMONIA,
    "Pleural_Thickening": FindingLabel.PLEURAL_THICKENING,
    "Cardiomegaly": FindingLabel.CARDIOMEGALY,
    "Nodule": FindingLabel.NODULE,
    "Mass": FindingLabel.MASS,
    "Hernia": FindingLabel.HERNIA,
    "Lung Lesion": FindingLabel.LUNG_LESION,
    "Fracture": FindingLabel.FRACTURE,
    "Lung Opacity": FindingLabel.LUNG_OPACITY,
    "Enlarged Cardiomediastinum": FindingLabel.ENLARGED_CARDIOMEDIASTINUM,
}

VINDR_LABELS: dict[str, FindingLabel | None] = {
    "Aortic enlargement": FindingLabel.AORTIC_ENLARGEMENT,
    "Atelectasis": FindingLabel.ATELECTASIS,
    "Calcification": FindingLabel.CALCIFICATION,
    "Cardiomegaly": FindingLabel.CARDIOMEGALY,
    "Consolidation": FindingLabel.CONSOLIDATION,
    "ILD": FindingLabel.ILD,
    "Infiltration": FindingLabel.INFILTRATION,
    "Lung Opacity": FindingLabel.LUNG_OPACITY,
    "Nodule/Mass": FindingLabel.NODULE,  # one VinDr class; coded as Nodule, the smaller and commoner reading
    "Other lesion": FindingLabel.OTHER_LESION,
    "Pleural effusion": FindingLabel.EFFUSION,
    "Pleural thickening": FindingLabel.PLEURAL_THICKENING,
    "Pneumothorax": FindingLabel.PNEUMOTHORAX,
    "Pulmonary fibrosis": FindingLabel.FIBROSIS,
}

# The public training sets' names (``models.datasets``). ChestX-ray14's are torchxrayvision's, whose NIH model they
# trained; its box file says "Infiltrate" where its label file says "Infiltration".
NIH_LABELS: dict[str, FindingLabel | None] = {**XRV_LABELS, "Infiltrate": FindingLabel.INFILTRATION}
PNEUMONIA_LABELS: dict[str, FindingLabel | None] = {"PNEUMONIA": FindingLabel.PNEUMONIA}
COVID_LABELS: dict[str, FindingLabel | None] = {
    "COVID": FindingLabel.COVID19,
    "Lung_Opacity": FindingLabel.LUNG_OPACITY,
    "Viral Pneumonia": FindingLabel.PNEUMONIA,  # the coarser concept: the image does not show the virus
}
GENERIC_LABELS: dict[str, FindingLabel | None] = {label.value: label for label in FindingLabel}

UNMAPPED: dict[str, str] = {}
"""Public label names without a code yet, with why: every public model's label is coded today. A name added here is
trained on but not reported, and a detector that declares it cannot load."""


class UnknownLabelError(ValueError):
    """A detector declared a label that has no code in this table."""


def code_for(label: str) -> CodedConcept:
    try:
        return FINDING_CODES[FindingLabel(label)]
    except ValueError as exc:
        why = UNMAPPED.get(label, "not in the table")
        raise UnknownLabelError(f"finding label {label!r} has no code in models.codes ({why})") from exc


def site_for(label: str) -> CodedConcept:
    return FINDING_SITES[FindingLabel(label)]


def require_known_labels(labels: Iterable[str]) -> None:
    """Called when a detector loads, so a missing code stops the worker at start and not mid-study."""
    for label in labels:
        code_for(label)
