"""dicom_node.contexts and dicom_node.ingest: every transfer syntax the SCP offers, sent by DCMTK storescu from files
DCMTK itself encoded, and decoded by the worker's own decoder from the spool: offered means tested."""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid

from dicom_node.scp import TRANSFER_SYNTAXES
from models.imaging import decode_file
from tests.helpers.encode_cases import derived_uid
from tests.helpers.peers import require_tool, storescu
from tests.helpers.scp import Node


@dataclass(frozen=True)
class Syntax:
    uid: uid.UID
    bits: int
    """Stored bits of the source crop the encoder accepts (JPEG baseline: 8, extended: 12)."""
    convert: tuple[str, ...]
    """The DCMTK command that writes it, or () to use pydicom-data's file as it is."""
    propose: str


SYNTAXES = [
    Syntax(uid.ExplicitVRLittleEndian, 15, ("dcmconv", "+te"), "-xe"),
    Syntax(uid.ImplicitVRLittleEndian, 15, ("dcmconv", "+ti"), "-xi"),
    Syntax(uid.DeflatedExplicitVRLittleEndian, 15, ("dcmconv", "+td"), "-xd"),
    Syntax(uid.JPEGBaseline8Bit, 8, ("dcmcjpeg", "+eb"), "-xy"),
    Syntax(uid.JPEGExtended12Bit, 12, ("dcmcjpeg", "+ee"), "-xx"),
    Syntax(uid.JPEGLosslessSV1, 15, ("dcmcjpeg", "+e1"), "-xs"),
    Syntax(uid.JPEGLSLossless, 15, ("dcmcjpls", "+el"), "-xt"),
    Syntax(uid.JPEGLSNearLossless, 15, ("dcmcjpls", "+en"), "-xu"),
    Syntax(uid.JPEG2000Lossless, 15, (), "-xv"),
    Syntax(uid.JPEG2000, 15, (), "-xw"),
    Syntax(uid.RLELossless, 15, ("dcmcrle",), "-xr"),
]


def test_the_table_covers_every_offered_syntax_but_one() -> None:
    # JPEG lossless process 14 (non-SV1) has no storescu option; pynetdicom sends it in test_jpeg_lossless_process_14.
    assert {s.uid for s in SYNTAXES} | {uid.JPEGLossless} == set(TRANSFER_SYNTAXES)


def crop(rg1: pydicom.Dataset, bits: int, name: str) -> pydicom.Dataset:
    """A 512×512 crop of RG1's right lung, rescaled to ``bits`` stored bits, with its own UIDs."""
    ds = copy.deepcopy(rg1)
    pixels = ds.pixel_array[600:1112, 300:812].astype(np.uint32)
    if bits < int(rg1.BitsStored):
        pixels >>= int(rg1.BitsStored) - bits
    allocated = 8 if bits == 8 else 16
    ds.PixelData = pixels.astype(np.uint8 if allocated == 8 else np.uint16).tobytes()
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits, bits - 1
    ds.WindowCenter, ds.WindowWidth = 2 ** (bits - 1), 2**bits
    ds.SOPInstanceUID = derived_uid("syntax", name)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    return ds


def encoded(syntax: Syntax, rg1: Path, j2k: dict[uid.UID, Path], tmp_path: Path) -> Path:
    if not syntax.convert:
        return j2k[syntax.uid]
    require_tool(syntax.convert[0])
    source = tmp_path / "source.dcm"
    crop(pydicom.dcmread(rg1), syntax.bits, syntax.uid.name).save_as(source, enforce_file_format=True)
    target = tmp_path / "encoded.dcm"
    subprocess.run([*syntax.convert, str(source), str(target)], check=True, capture_output=True)
    assert pydicom.dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax.uid
    return target


@pytest.mark.parametrize("syntax", SYNTAXES, ids=[s.uid.name for s in SYNTAXES])
def test_dcmtk_sends_and_the_worker_decodes(
    syntax: Syntax, node: Node, rg1: Path, rg1_j2kr: Path, rg1_j2ki: Path, tmp_path: Path
) -> None:
    path = encoded(syntax, rg1, {uid.JPEG2000Lossless: rg1_j2kr, uid.JPEG2000: rg1_j2ki}, tmp_path)
    result = storescu(path, node.port, "CXR_AI", syntax.propose)
    assert result.returncode == 0, result.stderr
    (spooled,) = node.spooled_files()
    assert pydicom.dcmread(spooled, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax.uid
    image = decode_file(spooled)
    original = pydicom.dcmread(path)
    assert image.pixels.shape == (original.Rows, original.Columns)
    assert image.pixels.std() > 0.05, "a real image came out, not a blank"


def test_jpeg_lossless_process_14(node: Node, rg1: Path, tmp_path: Path) -> None:
    from config.settings import Destination
    from dicom_node.scu import send_files

    require_tool("dcmcjpeg")
    source, target = tmp_path / "source.dcm", tmp_path / "p14.dcm"
    crop(pydicom.dcmread(rg1), 15, "p14").save_as(source, enforce_file_format=True)
    subprocess.run(["dcmcjpeg", "+el", str(source), str(target)], check=True, capture_output=True)
    assert pydicom.dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID == uid.JPEGLossless
    (outcome,) = send_files(Destination(name="n", ae_title="CXR_AI", host="127.0.0.1", port=node.port), [target])
    assert outcome.ok
    (spooled,) = node.spooled_files()
    assert decode_file(spooled).pixels.shape == (512, 512)
