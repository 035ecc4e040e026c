"""Our IOCM rejection note: a Key Object Selection document that withdraws result objects we sent (IHE IOCM).

Its Concept Name is the reason, from DICOM CID 7011 "Rejected for Quality Reasons" (113001), or 113037 "Rejected for
Patient Safety Reasons" when the source images were withdrawn for the patient's safety (the wrong patient, say). It
references every object it withdraws with their series and study. The UID follows the withdrawn objects and the
reason, so a retraction asked for twice is one document.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from config.settings import EquipmentSettings
from db.models import RejectionReason
from worker.encode.header import PROCESSING_ALGORITHM, finish
from worker.encode.uids import UIDKind, derive_uid

KOS_SERIES_NUMBER = 9004


def _algorithm_of(withdrawn: Sequence[Dataset]) -> Dataset | None:
    """The AIR item of the objects withdrawn: the note names the algorithm whose results it withdraws."""
    for ds in withdrawn:
        for item in ds.get("ContributingEquipmentSequence", []):
            purpose = item.get("PurposeOfReferenceCodeSequence", [])
            if purpose and purpose[0].CodeValue == PROCESSING_ALGORITHM.value:
                found: Dataset = item
                return found
    return None


def build_rejection_kos(
    withdrawn: Sequence[Dataset], reason: RejectionReason, equipment: EquipmentSettings, description: str
) -> hd.ko.KeyObjectSelectionDocument:
    """The note withdrawing ``withdrawn`` (headers of our objects, all of one study)."""
    study_uid = str(withdrawn[0].StudyInstanceUID)
    referenced = sorted(str(ds.SOPInstanceUID) for ds in withdrawn)
    content = hd.ko.KeyObjectSelection(
        document_title=hd.sr.CodedConcept(reason.code, "DCM", reason.meaning),
        referenced_objects=list(withdrawn),
        description=description[:1024],
    )
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=list(withdrawn),
        content=content,
        series_instance_uid=derive_uid(UIDKind.KOS_SERIES, study_uid),
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=derive_uid(UIDKind.KOS_INSTANCE, *referenced, reason.code),
        instance_number=1,
        manufacturer=equipment.manufacturer,
        institution_name=equipment.institution_name,
    )
    finish(kos, withdrawn[0], equipment, f"AI RESULT WITHDRAWN \u2013 {reason.meaning}", _algorithm_of(withdrawn))
    return kos
