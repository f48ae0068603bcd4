"""Out-of-distribution checks: inputs a chest radiograph model was not trained for get a warning, every time.

A CNN answers confidently whatever it is shown. These checks look only at what the reader already knows
(modality, body part, colour, shape) and say why a prediction is out of scope; they never block one, because
the person asking may know better (a phantom, a research question), but the warning travels with every output:
the JSON of `radcnn predict` and of the HTTP API, the viewer, and the DICOM SR of the node.
"""

from __future__ import annotations

from collections.abc import Sequence

from radcnn.data.readers.meta import ImageMeta

# Projection radiography (DX, CR; DR and RG are older or vendor spellings). MG is radiography too, but not of a chest.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "CHEST_LAT", "CHEST_PA", "CHEST_AP"})
# Reader photometric values (DICOM PhotometricInterpretation or Pillow mode) that mean a colour image.
COLOUR_PHOTOMETRIC = frozenset(
    {"RGB", "RGBA", "RGBX", "CMYK", "YCBCR", "LAB", "HSV", "P", "PA", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}
    | {"PALETTE COLOR"}
)
# Chest radiograph detectors are 35×43 cm, 43×43 cm or 43×35 cm: at most ~1.25:1. Beyond 1.6:1 the stretch to the
# model's square input distorts the anatomy visibly.
MAX_ASPECT_RATIO = 1.6


def input_warnings(meta: ImageMeta, input_size: Sequence[int]) -> list[str]:
    """Why this input is unlike the chest radiographs the model was trained on (empty when nothing is found)."""
    found: list[str] = []
    modality = str(meta.attributes.get("modality", "")).strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        found.append(
            f"out of scope: modality {modality} is not a projection radiograph (expected CR or DX); "
            "the model was trained on chest radiographs only"
        )
    body_part = str(meta.attributes.get("body_part", "")).strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        found.append(f"out of scope: body part examined is {body_part}, not the chest")
    photometric = str(meta.photometric or "").strip().upper()
    if photometric in COLOUR_PHOTOMETRIC:
        found.append(
            f"out of scope: colour image ({photometric}) converted to grayscale; "
            "a screenshot or photograph is not a radiograph"
        )
    height, width = meta.shape
    ratio = max(height, width) / max(min(height, width), 1)
    if ratio > MAX_ASPECT_RATIO:
        found.append(
            f"out of scope: extreme aspect ratio {ratio:.1f}:1 ({width}×{height} pixels); chest radiographs are "
            f"near-square and this image is stretched to {input_size[1]}×{input_size[0]}"
        )
    if height < input_size[0] or width < input_size[1]:
        found.append(
            f"image is {width}×{height} pixels, smaller than the model input {input_size[1]}×{input_size[0]}: "
            "it is enlarged, and fine detail the model relies on is missing"
        )
    return found
