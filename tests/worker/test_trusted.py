"""worker.encode.trusted: which header values an encoder may trust, and what is reported (keywords, never values)."""

from __future__ import annotations

import copy

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.filebase import DicomBytesIO

from models.imaging import UndecodableImageError, decode_dataset
from tests.helpers.mutations import REPRODUCERS, mutate
from worker.encode.trusted import trusted_header


def header(ds: pydicom.Dataset) -> pydicom.Dataset:
    without_pixels = copy.deepcopy(ds)
    del without_pixels.PixelData
    return without_pixels


def as_received(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` written and read back, as the worker reads a spooled file."""
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(DicomBytesIO(bytes(buffer.getvalue())))


def test_a_sound_header_is_kept_whole(rg1_dataset: pydicom.Dataset) -> None:
    trusted, left_out = trusted_header(rg1_dataset)
    assert left_out == ()
    assert "PixelData" not in trusted and trusted == header(rg1_dataset)


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("PatientBirthDate", REPRODUCERS["PatientBirthDate"], ("PatientBirthDate",)),
        ("StudyTime", REPRODUCERS["StudyTime"], ("StudyTime",)),
        ("SpecificCharacterSet", REPRODUCERS["SpecificCharacterSet"], ("SpecificCharacterSet",)),
        ("SpecificCharacterSet", b"", ("SpecificCharacterSet",)),
        ("StudyDate", b"20201345", ("StudyDate",)),  # the pattern fits; the month does not
        ("PatientSex", b"0 ", ("PatientSex",)),  # not one of M, F, O
        ("InstanceNumber", b"1e309", ("InstanceNumber",)),
        ("PatientName", None, ("PatientName",)),  # type 2 and copied: added, empty
        ("ImagerPixelSpacing", b"0", ("ImagerPixelSpacing",)),  # one value where the dictionary says two
        ("WindowWidth", REPRODUCERS["WindowWidth"], ()),  # a sound value for the header; the image cannot use it
    ],
)
def test_what_cannot_be_encoded_is_blanked_and_named(
    rg1_dataset: pydicom.Dataset, keyword: str, value: bytes | None, expected: tuple[str, ...]
) -> None:
    bad = as_received(mutate(rg1_dataset, keyword, value))
    trusted, left_out = trusted_header(bad)
    assert left_out == expected
    for name in expected:
        assert name not in trusted or trusted[name].value in (None, "", [])
    others = [t for t in sorted(bad.keys()) if keyword_for_tag(t) not in (*expected, "PixelData")]
    assert others and all(str(trusted[t].value) == str(bad[t].value) for t in others), "the rest is untouched"


def test_an_empty_first_character_set_term_is_spelled_as_highdicom_takes_it(rg1_dataset: pydicom.Dataset) -> None:
    japanese = header(rg1_dataset)
    japanese.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    trusted, left_out = trusted_header(japanese)
    assert left_out == () and list(trusted.SpecificCharacterSet) == ["ISO 2022 IR 6", "ISO 2022 IR 87"]


@pytest.mark.parametrize("keyword", ["WindowWidth", "VOILUTFunction"])
def test_a_window_the_image_cannot_use_is_refused_in_words(rg1_dataset: pydicom.Dataset, keyword: str) -> None:
    bad = as_received(mutate(rg1_dataset, keyword, REPRODUCERS[keyword]))
    with pytest.raises(UndecodableImageError, match=r"^the Modality LUT, VOI LUT or window cannot be applied \(\w+\)$"):
        decode_dataset(bad)
