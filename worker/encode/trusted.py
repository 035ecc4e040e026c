"""Source headers as an encoder may trust them: each value that cannot be encoded is blanked, a character set pydicom
does not know is dropped, and a missing type 2 attribute that every object copies is added empty, so that one bad value
never stops a "not performed" SR.

Only attribute keywords are reported back (never values): they say what was left out without naming the patient.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable

from highdicom.valuerep import _check_specific_character_set
from pydicom import config
from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_has_tag, dictionary_VM, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import DA, DS, DT, IS, TM, validate_value

logger = logging.getLogger(__name__)

# Values pydicom's pattern check lets through but its value classes (which highdicom uses) cannot convert.
CONVERTERS: dict[str, Callable[[str], object]] = {"DA": DA, "TM": TM, "DT": DT, "DS": DS, "IS": IS}
# Type 2 attributes of the Patient and General Study modules, which every result object copies: present, if empty.
COPIED_TYPE_2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip
# Attributes whose values highdicom checks against the standard's enumeration when it copies them.
ENUMERATED = {"PatientSex": frozenset({"M", "F", "O"})}
TEXT_LIKE = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT"})


def _values(value: object) -> Iterable[object]:
    return value if isinstance(value, (MultiValue, list, tuple)) else [value]


def _vm_fits(vm: str, count: int) -> bool:
    """Whether ``count`` values fit a dictionary VM such as "1", "2", "1-3", "1-n" or "2-2n"."""
    low, _, high = vm.partition("-")
    if not low.isdigit():
        return True
    if not high:
        return count == int(low)
    if high.isdigit():
        return int(low) <= count <= int(high)
    step = int(high[:-1]) if high[:-1].isdigit() else 1  # "n" or "2n": any multiple of the step, at least low
    return count >= int(low) and count % step == 0


def _usable(element: DataElement) -> bool:
    try:
        value = element.value
    except Exception:  # a value pydicom cannot even decode
        return False
    if element.VR not in TEXT_LIKE or value is None or value == "":
        return True
    if dictionary_has_tag(element.tag) and not _vm_fits(dictionary_VM(element.tag), len(list(_values(value)))):
        return False  # a spacing with one value, say: whoever reads it as a pair fails
    if element.keyword in ENUMERATED:
        return all(str(item) in ENUMERATED[element.keyword] for item in _values(value))
    try:
        # Numbers and names pydicom already converted are usable; raw strings are checked as highdicom will use them.
        for item in (v for v in _values(value) if type(v) is str):
            validate_value(element.VR, item, config.RAISE)
            if element.VR in CONVERTERS and str(item).strip():
                CONVERTERS[element.VR](str(item))
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _known_character_set(header: Dataset) -> bool:
    """Whether both pydicom (to read the values) and highdicom (to copy the attribute) take the character set."""
    try:
        value = header.SpecificCharacterSet
        terms = [str(term) for term in _values(value)]
        # highdicom's own check, the one its constructors apply (highdicom is pinned below 0.29 in pyproject).
        _check_specific_character_set(terms if len(terms) > 1 else terms[0])
    except Exception:
        return False
    return all(term in python_encoding for term in terms if term)


def _blank_unusable(dataset: Dataset, blanked: list[str]) -> None:
    """Blank every value in ``dataset`` (and its sequences' items) that cannot be read or encoded."""
    for tag in list(dataset.keys()):
        raw_vr = dataset.get_item(tag).VR  # get_item does not convert: a raw value that cannot be read stays raw
        try:
            element = dataset[tag]
        except Exception:  # a value pydicom cannot even convert (an IS of "1e309")
            vr = raw_vr or (dictionary_VR(tag) if dictionary_has_tag(tag) else "UN")
            dataset[tag] = DataElement(tag, vr, None)
            blanked.append(keyword_for_tag(tag) or str(tag))
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                _blank_unusable(item, blanked)
        elif not _usable(element):
            element.value = None
            blanked.append(element.keyword or str(tag))


def trusted_header(source: Dataset) -> tuple[Dataset, tuple[str, ...]]:
    """A copy of ``source`` (header only) with unusable values blanked; and the keywords of what was blanked."""
    header = copy.deepcopy(source)
    if "PixelData" in header:
        del header.PixelData
    blanked: list[str] = []
    terms = [str(term) for term in _values(header.get("SpecificCharacterSet") or [])]
    if len(terms) > 1 and not terms[0]:
        # PS3.3 C.12.1.1.2: an empty first value of several means ISO 2022 IR 6, the spelling highdicom accepts.
        header.SpecificCharacterSet = ["ISO 2022 IR 6", *terms[1:]]
    if "SpecificCharacterSet" in header and not _known_character_set(header):
        del header.SpecificCharacterSet  # the default repertoire: ASCII values read the same
        blanked.append("SpecificCharacterSet")

    _blank_unusable(header, blanked)
    for keyword in COPIED_TYPE_2:
        if keyword not in header:
            setattr(header, keyword, None)
            blanked.append(keyword)
    if blanked:
        logger.warning("source header values not usable, left out: %s", ", ".join(sorted(set(blanked))))
    return header, tuple(sorted(set(blanked)))
