"""Out-of-distribution warnings from the reader's metadata (hand-made ImageMeta records)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radcnn.data.readers.meta import ImageMeta
from radcnn.serve.ood import MAX_ASPECT_RATIO, input_warnings


def meta(shape=(512, 512), photometric="MONOCHROME2", **attributes) -> ImageMeta:
    return ImageMeta(Path("x"), "dicom", shape, 12, photometric, None, None, attributes=attributes)


def test_a_chest_radiograph_gets_no_warning():
    assert input_warnings(meta(modality="DX", body_part="CHEST"), (224, 224)) == []
    assert input_warnings(meta(photometric="L"), (224, 224)) == []  # a grayscale PNG has no modality: fine


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (meta(modality="CT"), "modality CT is not a projection radiograph"),
        (meta(modality="MR"), "modality MR"),
        (meta(modality="DX", body_part="KNEE"), "body part examined is KNEE"),
        (meta(photometric="RGB"), "colour image (RGB)"),
        (meta(photometric="YBR_FULL_422"), "colour image (YBR_FULL_422)"),
        (meta(photometric="P"), "colour image (P)"),
        (meta(shape=(400, 1200)), "extreme aspect ratio 3.0:1"),
        (meta(shape=(100, 100)), "smaller than the model input 224×224"),
    ],
)
def test_each_out_of_scope_input_is_named(record, fragment):
    warnings = input_warnings(record, (224, 224))
    assert len(warnings) == 1 and fragment in warnings[0]


def test_aspect_ratio_threshold_is_inclusive_of_real_detector_formats():
    assert input_warnings(meta(shape=(430, 350)), (224, 224)) == []  # 43 × 35 cm
    ratio_just_over = meta(shape=(1000, int(1000 / (MAX_ASPECT_RATIO + 0.05))))
    assert "aspect ratio" in input_warnings(ratio_just_over, (224, 224))[0]


def test_several_problems_give_several_warnings():
    assert len(input_warnings(meta(shape=(100, 400), photometric="RGB", modality="US"), (224, 224))) == 4
