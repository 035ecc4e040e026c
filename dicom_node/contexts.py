"""What the SCP negotiates: the storage SOP classes it accepts and the transfer syntaxes it can decode."""

from __future__ import annotations

from pydicom import uid

from config.settings import ScpSettings

STORAGE_SOP_CLASSES = (
    uid.ComputedRadiographyImageStorage,
    uid.DigitalXRayImageStorageForPresentation,
    uid.DigitalXRayImageStorageForProcessing,
)
VERIFICATION = uid.UID("1.2.840.10008.1.1")
SECONDARY_CAPTURE = uid.SecondaryCaptureImageStorage
KEY_OBJECT_SELECTION = uid.KeyObjectSelectionDocumentStorage
"""Accepted for IHE IOCM: a rejection note withdraws the images it references; any other KOS is acknowledged and
ignored."""

# Each is decodable by pydicom itself (uncompressed, deflate, RLE) or by the installed pylibjpeg plugins
# (libjpeg: JPEG baseline/extended/lossless, JPEG-LS; openjpeg: JPEG 2000).
TRANSFER_SYNTAXES = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.RLELossless,
)


def accepted_storage_classes(settings: ScpSettings) -> tuple[uid.UID, ...]:
    """CR and DX and Key Object Selection (IOCM rejection notes) always; Secondary Capture only when the site asks
    for it (stored and recorded, never analysed)."""
    extra = (SECONDARY_CAPTURE,) if settings.accept_secondary_capture else ()
    return (*STORAGE_SOP_CLASSES, KEY_OBJECT_SELECTION, *extra)
