"""The result bundle for one study: one SR, and an overlay SC and a GSPS per analysed image, and a SEG per image with
a boxed finding where a destination asks for one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from config.settings import EquipmentSettings
from db.models import ResultKind
from db.results import ResultRecord
from models.protocol import Provenance
from worker.encode.gsps import build_gsps
from worker.encode.inputs import EncodeContext
from worker.encode.sc import build_overlay_sc
from worker.encode.seg import build_seg
from worker.encode.sr import build_not_performed_sr, build_sr


@dataclass(frozen=True)
class EncodedObject:
    kind: ResultKind
    dataset: Dataset

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)

    def record(self, path: Path) -> ResultRecord:
        """The row the database keeps of this object once written to ``path``: its UIDs and its series and instance
        numbers, by which an admin finds it in the PACS."""
        number = self.dataset.get("InstanceNumber")
        series = self.dataset.get("SeriesNumber")
        return ResultRecord(
            kind=self.kind,
            sop_class_uid=str(self.dataset.SOPClassUID),
            sop_instance_uid=self.sop_instance_uid,
            series_instance_uid=str(self.dataset.SeriesInstanceUID),
            path=path,
            series_number=None if series in (None, "") else int(series),
            instance_number=None if number in (None, "") else int(number),
        )

    def write(self, results_dir: Path) -> Path:
        """Write atomically under ``results_dir/<study>/<kind>/<sop>.dcm`` (the UIDs are ours, hence safe in paths)."""
        folder = results_dir / str(self.dataset.StudyInstanceUID) / self.kind.value
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.sop_instance_uid}.dcm"
        partial = path.with_suffix(".partial")
        self.dataset.save_as(partial, enforce_file_format=True)
        partial.replace(path)
        return path


def encode_study(context: EncodeContext, predecessors: Sequence[Dataset] = ()) -> list[EncodedObject]:
    """``predecessors``: earlier SRs of this study (say, before a late lateral arrived) that the new SR supersedes."""
    objects = [obj for number in range(1, len(context.images) + 1) for obj in encode_image(context, number)]
    return [encode_report(context, predecessors, objects), *objects]


def encode_image(context: EncodeContext, number: int) -> list[EncodedObject]:
    """The objects of the ``number``-th analysed image (from 1): its overlay SC, its GSPS and, where a destination
    asks for one, its SEG. They are final once every image was detected (the study's triage is known), so they can
    be sent before the SR is built."""
    image = context.images[number - 1]
    objects = [
        EncodedObject(ResultKind.SC, build_overlay_sc(image, context, number)),
        EncodedObject(ResultKind.GSPS, build_gsps(image, context, number)),
    ]
    seg = build_seg(image, context, number) if context.segmentations else None
    return objects if seg is None else [*objects, EncodedObject(ResultKind.SEG, seg)]


def encode_report(
    context: EncodeContext, predecessors: Sequence[Dataset], image_objects: Sequence[EncodedObject]
) -> EncodedObject:
    """The study's SR, built last: it names the SEGs' segments among ``image_objects``, so they are its evidence."""
    segmentations = [o.dataset for o in image_objects if o.kind is ResultKind.SEG]
    return EncodedObject(ResultKind.SR, build_sr(context, predecessors, segmentations))


def encode_not_performed(
    sources: Sequence[Dataset],
    reason: str,
    provenance: Provenance,
    equipment: EquipmentSettings,
    predecessors: Sequence[Dataset] = (),
    study_inputs: Sequence[str] = (),
) -> EncodedObject:
    sr = build_not_performed_sr(sources, reason, provenance, equipment, predecessors, study_inputs)
    return EncodedObject(ResultKind.SR, sr)
