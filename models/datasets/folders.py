"""Class-folder layouts: Kaggle's chest-xray-pneumonia and the COVID-19 Radiography Database.

Pneumonia: ``[chest_xray/]{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``; the folders give the split, and the file name's
``personN_`` prefix the patient. COVID-19 Radiography Database: ``{COVID,Lung_Opacity,Normal,Viral Pneumonia}/
images/*.png`` with the lung masks in ``…/masks/`` (or, in the first release, the images straight in the class folder);
it has no split and no patient ids, so each image is its own group.
"""

from __future__ import annotations

from pathlib import Path

from models.codes import COVID_LABELS, PNEUMONIA_LABELS
from models.datasets.base import DatasetLayoutError, LabelledSet, Sample, Split, sorted_labels
from models.imaging import RASTER_SUFFIXES

PNEUMONIA_SPLITS = {"train": Split.TRAIN, "val": Split.VALIDATION, "test": Split.TEST}
COVID_CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)


def read_pneumonia(root: Path) -> LabelledSet:
    base = root / "chest_xray" if (root / "chest_xray" / "train").is_dir() else root
    samples = []
    for folder, split in PNEUMONIA_SPLITS.items():
        for name in ("NORMAL", "PNEUMONIA"):
            directory = base / folder / name
            if not directory.is_dir():
                continue
            labels = frozenset({name}) if name == "PNEUMONIA" else frozenset()
            samples += [Sample(p, labels, (), p.name.split("_")[0], split) for p in _images(directory)]
    if not samples:
        raise DatasetLayoutError(f"no train/NORMAL or train/PNEUMONIA images under {root}")
    return LabelledSet("pneumonia", root, ("PNEUMONIA",), tuple(samples), PNEUMONIA_LABELS)


def read_covid(root: Path) -> LabelledSet:
    samples: list[Sample] = []
    names: set[str] = set()
    for name in COVID_CLASSES:
        directory = root / name
        if not directory.is_dir():
            continue
        images = directory / "images" if (directory / "images").is_dir() else directory
        masks = directory / "masks"
        labels = frozenset() if name == "Normal" else frozenset({name})
        names |= labels
        for path in _images(images):
            mask = masks / path.name
            samples.append(Sample(path, labels, (), path.stem, None, mask if mask.is_file() else None))
    if not samples:
        raise DatasetLayoutError(f"none of the class folders {', '.join(COVID_CLASSES)} found under {root}")
    return LabelledSet("covid", root, sorted_labels(names, COVID_LABELS), tuple(samples), COVID_LABELS)
