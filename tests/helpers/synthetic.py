"""Tiny datasets in each supported layout, from real radiographs with synthetic lesions at known places.

Backgrounds are tiles of RG1 (a chest CR) and RG3 (a non-chest CR) from pydicom-data, cropped and flipped at random.
A "lesion" is a bright round opacity (a smooth disc) added to the image; its box is written as the layout writes
boxes. Three images in four have one to three lesions; the rest are "no finding".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from models.imaging import FloatImage, decode_dataset
from models.protocol import Box

SIZE = (288, 320)
"""(rows, columns) of every synthetic image."""


@dataclass(frozen=True)
class SyntheticImage:
    name: str
    pixels: FloatImage
    boxes: tuple[Box, ...]
    split: str
    """train, validation or test: 28, 6 and 6 of 40."""

    @property
    def positive(self) -> bool:
        return bool(self.boxes)


def _backgrounds() -> list[FloatImage]:
    tiles = []
    for name in ("RG1_UNCR.dcm", "RG3_UNCR.dcm"):
        pixels = decode_dataset(pydicom.dcmread(get_testdata_file(name))).pixels
        scale = 640 / max(pixels.shape)
        tiles.append(cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    return tiles


def _lesion(image: FloatImage, rng: np.random.Generator, others: list[Box]) -> Box:
    """A new lesion clear of ``others``, so that every lesion is one box whatever a reader does with overlaps."""
    rows, cols = image.shape
    radius = rng.uniform(0.055, 0.075) * cols
    while True:
        x, y = rng.uniform(0.25 * cols, 0.75 * cols), rng.uniform(0.25 * rows, 0.75 * rows)
        candidate = Box(x - 1.5 * radius, y - 1.5 * radius, x + 1.5 * radius, y + 1.5 * radius)
        if all(candidate.iou(other) == 0 for other in others):
            break
    yy, xx = np.mgrid[:rows, :cols]
    disc = np.exp(-((((xx - x) ** 2 + (yy - y) ** 2) / radius**2) ** 2)).astype(np.float32)
    np.clip(image + np.float32(0.5) * disc, 0.0, 1.0, out=image)
    return Box(round(x - radius, 1), round(y - radius, 1), round(x + radius, 1), round(y + radius, 1))


def make_images(count: int = 40, seed: int = 0) -> list[SyntheticImage]:
    rng = np.random.default_rng(seed)
    tiles = _backgrounds()
    images = []
    for i in range(count):
        tile = tiles[0] if i % 4 else tiles[1]  # one in four from the non-chest radiograph
        height, width = int(rng.integers(420, 560)), int(rng.integers(440, 600))
        top = int(rng.integers(0, tile.shape[0] - height + 1)) if tile.shape[0] > height else 0
        left = int(rng.integers(0, tile.shape[1] - width + 1)) if tile.shape[1] > width else 0
        crop = tile[top : top + height, left : left + width]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        pixels = cv2.resize(np.ascontiguousarray(crop), (SIZE[1], SIZE[0]), interpolation=cv2.INTER_AREA)
        boxes: list[Box] = []
        for _ in range(int(rng.integers(1, 4)) if i % 4 else 0):
            boxes.append(_lesion(pixels, rng, boxes))
        split = "train" if i < count * 0.7 else "validation" if i < count * 0.85 else "test"
        images.append(SyntheticImage(f"{i:03d}", pixels.astype(np.float32), tuple(boxes), split))
    return images


def write_png(path: Path, pixels: FloatImage) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8))


def write_dicom(path: Path, pixels: FloatImage) -> None:
    """RG1's header with new pixels: 12-bit MONOCHROME1, as the CR it came from."""
    ds = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    stored = np.round((1.0 - pixels) * 4095).astype(np.uint16)
    ds.Rows, ds.Columns = stored.shape
    ds.PixelData = stored.tobytes()
    for keyword in ("WindowCenter", "WindowWidth", "VOILUTSequence"):
        if keyword in ds:
            del ds[keyword]
    ds.BitsStored, ds.HighBit = 12, 11
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_nih(root: Path, images: list[SyntheticImage]) -> None:
    with (root / "Data_Entry_2017.csv").open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(
            [
                "Image Index",
                "Finding Labels",
                "Follow-up #",
                "Patient ID",
                "Patient Age",
                "Patient Gender",
                "View Position",
                "OriginalImage[Width",
                "Height]",
                "OriginalImagePixelSpacing[x",
                "y]",
            ]
        )
        for image in images:
            rows.writerow(
                [
                    f"{image.name}_000.png",
                    "Nodule" if image.positive else "No Finding",
                    0,
                    image.name,
                    50,
                    "F",
                    "PA",
                    SIZE[1],
                    SIZE[0],
                    0.143,
                    0.143,
                ]
            )
    with (root / "BBox_List_2017.csv").open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""])
        for image in images:
            for box in image.boxes:
                rows.writerow(
                    [
                        f"{image.name}_000.png",
                        "Nodule",
                        box.x_min,
                        box.y_min,
                        box.x_max - box.x_min,
                        box.y_max - box.y_min,
                        "",
                        "",
                        "",
                    ]
                )
    for image in images:
        write_png(root / "images_001" / "images" / f"{image.name}_000.png", image.pixels)
    (root / "train_val_list.txt").write_text("".join(f"{i.name}_000.png\n" for i in images if i.split != "test"))
    (root / "test_list.txt").write_text("".join(f"{i.name}_000.png\n" for i in images if i.split == "test"))


def write_vindr(root: Path, images: list[SyntheticImage]) -> None:
    """The PhysioNet layout: three radiologists per training image, boxes a few pixels apart; a consensus test set."""
    rng = np.random.default_rng(1)
    columns = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
    for split in ("train", "test"):
        chosen = [i for i in images if (i.split == "test") == (split == "test")]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        with (root / "annotations" / f"annotations_{split}.csv").open("w", newline="") as handle:
            rows = csv.writer(handle)
            rows.writerow(columns)
            for image in chosen:
                readers = ["R8", "R9", "R10"] if split == "train" else ["R1"]
                for reader in readers:
                    if not image.boxes:
                        rows.writerow([image.name, reader, "No finding", "", "", "", ""])
                    for box in image.boxes:
                        jitter = rng.uniform(-3, 3, 4) if split == "train" else np.zeros(4)
                        rows.writerow(
                            [
                                image.name,
                                reader,
                                "Nodule/Mass",
                                *(round(v + d, 1) for v, d in zip(box.as_tuple(), jitter, strict=True)),
                            ]
                        )
        for image in chosen:
            write_dicom(root / split / f"{image.name}.dicom", image.pixels)


def write_pneumonia(root: Path, images: list[SyntheticImage]) -> None:
    folders = {"train": "train", "validation": "val", "test": "test"}
    for image in images:
        name = f"person{image.name}_bacteria_{image.name}.jpeg" if image.positive else f"IM-{image.name}-0001.jpeg"
        folder = root / "chest_xray" / folders[image.split] / ("PNEUMONIA" if image.positive else "NORMAL")
        write_png(folder / name, image.pixels)


def write_covid(root: Path, images: list[SyntheticImage]) -> None:
    base = root / "COVID-19_Radiography_Dataset"
    for image in images:
        folder = base / ("COVID" if image.positive else "Normal")
        name = f"{'COVID' if image.positive else 'Normal'}-{image.name}.png"
        write_png(folder / "images" / name, image.pixels)
        mask = np.zeros(image.pixels.shape, dtype=np.float32)
        for centre in (0.3, 0.7):
            cv2.ellipse(mask, (int(centre * SIZE[1]), SIZE[0] // 2), (SIZE[1] // 6, SIZE[0] // 3), 0, 0, 360, 1.0, -1)
        write_png(folder / "masks" / name, mask)


def write_csv(root: Path, images: list[SyntheticImage]) -> Path:
    path = root / "labels.csv"
    with path.open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["path", "labels", "x_min", "y_min", "x_max", "y_max", "box_label", "patient", "split"])
        for image in images:
            relative = f"images/{image.name}.png"
            write_png(root / relative, image.pixels)
            if not image.boxes:
                rows.writerow([relative, "", "", "", "", "", "", f"p{image.name}", image.split])
            for box in image.boxes:
                rows.writerow([relative, "Nodule", *box.as_tuple(), "Nodule", f"p{image.name}", image.split])
    return path


WRITERS = {"nih": write_nih, "vindr": write_vindr, "pneumonia": write_pneumonia, "covid": write_covid}


def write_layout(layout: str, root: Path, images: list[SyntheticImage]) -> Path:
    """The path ``cxr train --data`` takes for this layout."""
    root.mkdir(parents=True, exist_ok=True)
    if layout == "csv":
        return write_csv(root, images)
    WRITERS[layout](root, images)
    return root / "COVID-19_Radiography_Dataset" if layout == "covid" else root
