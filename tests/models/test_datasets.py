"""models.datasets: the dataset readers on each layout as downloaded (built by tests/helpers/synthetic.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from models.datasets import DatasetLayoutError, Split, read_dataset, split_samples
from models.datasets.base import Annotation
from models.datasets.vindr import fuse_boxes
from models.protocol import Box
from tests.helpers.synthetic import SyntheticImage, make_images, write_layout


@pytest.fixture(scope="module")
def images() -> list[SyntheticImage]:
    return make_images()


@pytest.fixture(scope="module")
def layouts(images: list[SyntheticImage], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {
        layout: write_layout(layout, root / layout, images) for layout in ("nih", "vindr", "pneumonia", "covid", "csv")
    }


def positives(images: list[SyntheticImage]) -> int:
    return sum(1 for image in images if image.positive)


@pytest.mark.parametrize("layout", ["nih", "vindr", "pneumonia", "covid", "csv"])
def test_every_layout_reads_every_image_with_its_labels(
    layout: str, layouts: dict[str, Path], images: list[SyntheticImage]
) -> None:
    dataset = read_dataset(layout, layouts[layout])
    assert len(dataset.samples) == len(images)
    assert sum(1 for s in dataset.samples if s.labels) == positives(images)
    assert all(s.image.is_file() for s in dataset.samples)
    assert all(dataset.codes.get(name) is not None for name in dataset.labels), "every synthetic label has a code"
    described = dataset.describe()
    assert described["images"] == 40 and "patient" not in str(described).lower()


@pytest.mark.parametrize("layout", ["nih", "csv"])
def test_boxes_are_read_in_source_pixels(layout: str, layouts: dict[str, Path], images: list[SyntheticImage]) -> None:
    dataset = read_dataset(layout, layouts[layout])
    truth = {box.as_tuple() for image in images for box in image.boxes}
    read = {tuple(round(v, 1) for v in a.box.as_tuple()) for s in dataset.samples for a in s.annotations}
    assert read == truth


def test_official_splits_are_kept(layouts: dict[str, Path], images: list[SyntheticImage]) -> None:
    tests = sum(1 for image in images if image.split == "test")
    for layout in ("nih", "vindr", "csv", "pneumonia"):
        dataset = read_dataset(layout, layouts[layout])
        assert len(split_samples(dataset, Split.TEST).samples) == tests, layout
        train, validation = (split_samples(dataset, s).samples for s in (Split.TRAIN, Split.VALIDATION))
        assert train and validation and not {s.image for s in train} & {s.image for s in validation}


def test_a_patient_never_straddles_splits(layouts: dict[str, Path]) -> None:
    dataset = read_dataset("covid", layouts["covid"])
    splits = {split: {s.group for s in split_samples(dataset, split, seed=3).samples} for split in Split}
    assert sum(len(groups) for groups in splits.values()) == len(dataset.samples)
    assert not splits[Split.TRAIN] & splits[Split.TEST]


def test_vindr_reader_choices(layouts: dict[str, Path], images: list[SyntheticImage]) -> None:
    lesions = sum(len(image.boxes) for image in images)
    train_lesions = sum(len(image.boxes) for image in images if image.split != "test")
    fused = read_dataset("vindr", layouts["vindr"], vindr_boxes="fuse")
    assert sum(len(s.annotations) for s in fused.samples) == lesions  # three readers' boxes become one
    every = read_dataset("vindr", layouts["vindr"], vindr_boxes="all")
    assert sum(len(s.annotations) for s in every.samples) == 3 * train_lesions + (lesions - train_lesions)
    one = read_dataset("vindr", layouts["vindr"], vindr_boxes="R9")
    assert len(one.samples) == sum(1 for image in images if image.split != "test")  # R9 read the training set only
    assert all(a.reader == "R9" for s in one.samples for a in s.annotations)
    with pytest.raises(ValueError, match="radiologist"):
        read_dataset("vindr", layouts["vindr"], vindr_boxes="best")


def test_box_fusion_averages_overlaps_and_keeps_lone_boxes() -> None:
    fused = fuse_boxes(
        [
            Annotation("Nodule/Mass", Box(10, 10, 50, 50), "R8"),
            Annotation("Nodule/Mass", Box(14, 12, 54, 52), "R9"),
            Annotation("Nodule/Mass", Box(200, 200, 220, 220), "R10"),
            Annotation("Pleural effusion", Box(12, 10, 52, 50), "R10"),
        ]
    )
    by_label = sorted((a.label, a.box.as_tuple()) for a in fused)
    assert by_label == [
        ("Nodule/Mass", (12.0, 11.0, 52.0, 51.0)),
        ("Nodule/Mass", (200.0, 200.0, 220.0, 220.0)),
        ("Pleural effusion", (12.0, 10.0, 52.0, 50.0)),
    ]


def test_nih_reads_infiltrate_boxes_as_infiltration(tmp_path: Path, images: list[SyntheticImage]) -> None:
    write_layout("nih", tmp_path, images[:4])
    with (tmp_path / "BBox_List_2017.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow(["001_000.png", "Infiltrate", 1, 2, 30, 40, "", "", ""])
    dataset = read_dataset("nih", tmp_path)
    (sample,) = [s for s in dataset.samples if s.image.name == "001_000.png"]
    assert Annotation("Infiltration", Box(1, 2, 31, 42)) in sample.annotations


def test_covid_pairs_each_image_with_its_mask(layouts: dict[str, Path]) -> None:
    dataset = read_dataset("covid", layouts["covid"])
    assert all(
        s.mask is not None and s.mask.name == s.image.name and s.mask.parent.name == "masks" for s in dataset.samples
    )


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("nih", "Data_Entry_2017.csv"),
        ("vindr", "annotations"),
        ("pneumonia", "NORMAL"),
        ("covid", "COVID"),
        ("csv", "label CSV"),
        ("kaggle", "unknown dataset layout"),
    ],
)
def test_a_wrong_folder_names_what_is_missing(layout: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=message):
        read_dataset(layout, tmp_path / "labels.csv" if layout == "csv" else tmp_path)


def test_generic_csv_rejects_a_missing_image(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,labels\nabsent.png,Nodule\n")
    with pytest.raises(DatasetLayoutError, match=r"line 2: image absent\.png not found"):
        read_dataset("csv", tmp_path / "labels.csv")
