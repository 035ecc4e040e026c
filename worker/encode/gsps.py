"""The Grayscale Softcopy Presentation State: the same boxes and labels drawn over the original image."""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from worker.encode.geometry import closed_rectangle
from worker.encode.header import algorithm_item, finish
from worker.encode.inputs import AnalysedImage, EncodeContext
from worker.encode.uids import UIDKind, derive_uid

GSPS_SERIES_NUMBER = 9003
LAYER = "AI_FINDINGS"


def gsps_uids(image: AnalysedImage, context: EncodeContext) -> tuple[UID, UID]:
    series = derive_uid(UIDKind.GSPS_SERIES, context.study_instance_uid, context.provenance.output_key)
    instance = derive_uid(UIDKind.GSPS_INSTANCE, image.token, context.provenance.output_key)
    return series, instance


def _annotation(image: AnalysedImage, layer: hd.pr.GraphicLayer, context: EncodeContext) -> hd.pr.GraphicAnnotation:
    rows, cols = image.decoded.pixels.shape
    graphics: list[hd.pr.GraphicObject] = []
    texts = [
        hd.pr.TextObject(
            text_value=context.alert_banner,
            units=hd.pr.AnnotationUnitsValues.DISPLAY,
            bounding_box=(0.01, 0.01, 0.99, 0.05),
            text_justification=hd.pr.TextJustificationValues.LEFT,
        )
    ]
    for finding in image.result.findings:
        if finding.box is None:
            continue
        graphics.append(
            hd.pr.GraphicObject(
                graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
                graphic_data=np.array(closed_rectangle(finding.box.as_tuple()), dtype=np.float64),
                units=hd.pr.AnnotationUnitsValues.PIXEL,
            )
        )
        box = finding.box
        label_height = max(rows / 40.0, 10.0)
        top = box.y_min - label_height if box.y_min >= label_height else min(box.y_max, rows - label_height)
        texts.append(
            hd.pr.TextObject(
                text_value=f"{finding.label} {finding.probability:.2f}",
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                bounding_box=(box.x_min, top, min(box.x_max + cols / 10.0, float(cols)), top + label_height),
                text_justification=hd.pr.TextJustificationValues.LEFT,
            )
        )
    return hd.pr.GraphicAnnotation(
        referenced_images=[image.source],
        graphic_layer=layer,
        graphic_objects=graphics or None,
        text_objects=texts,
    )


def _window(source: Dataset) -> list[hd.pr.SoftcopyVOILUTTransformation] | None:
    """The source's own first window, so the GSPS opens as the modality meant the image to be read."""
    if "WindowCenter" not in source or "WindowWidth" not in source:
        return None
    center = source.WindowCenter[0] if source["WindowCenter"].VM > 1 else source.WindowCenter
    width = source.WindowWidth[0] if source["WindowWidth"].VM > 1 else source.WindowWidth
    return [hd.pr.SoftcopyVOILUTTransformation(window_center=float(center), window_width=float(width))]


def build_gsps(
    image: AnalysedImage, context: EncodeContext, instance_number: int
) -> hd.pr.GrayscaleSoftcopyPresentationState:
    source = image.source
    layer = hd.pr.GraphicLayer(layer_name=LAYER, order=1, description="AI findings")
    # A MONOCHROME1 source displays inverted under the default IDENTITY shape; INVERSE keeps it as the modality meant.
    shape = "INVERSE" if source.PhotometricInterpretation == "MONOCHROME1" else "IDENTITY"
    series_uid, instance_uid = gsps_uids(image, context)
    gsps = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[source],
        series_instance_uid=series_uid,
        series_number=GSPS_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=instance_number,
        **context.made_by(),
        graphic_annotations=[_annotation(image, layer, context)],
        graphic_layers=[layer],
        voi_lut_transformations=_window(source),
        presentation_lut_transformation=hd.PresentationLUTTransformation(presentation_lut_shape=shape),
    )
    # Laterality is Type 2C on chest images; dciodvfy needs BodyPartExamined to decide it does not apply.
    gsps.BodyPartExamined = source.get("BodyPartExamined") or "CHEST"
    finish(
        gsps, source, context.equipment, f"{context.banner} GSPS", algorithm_item(context.provenance, context.equipment)
    )
    return gsps
