"""The "shift" augmentation preset: reproducible from its seed, in range, small geometry, real appearance changes."""

import numpy as np
import pytest

from radcnn.data.augment import PRESETS, SHIFT_FRACTION, SHIFT_RANGES, build_augmentation
from radcnn.errors import ConfigError


def _image(side=28, seed=0):
    return np.random.default_rng(seed).random((1, side, side)).astype(np.float32)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "none"])
def test_presets_are_reproducible_from_the_seed_and_stay_in_range(preset):
    image = _image()
    a, b, c = (build_augmentation(preset, seed=s, image_size=28) for s in (3, 3, 4))
    out_a = [a(image) for _ in range(12)]
    out_b = [b(image) for _ in range(12)]
    out_c = [c(image) for _ in range(12)]
    assert all(np.array_equal(x, y) for x, y in zip(out_a, out_b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(out_a, out_c, strict=True))
    for out in out_a:
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("side", [28, 56])
def test_shift_moves_content_at_most_the_documented_fraction(side):
    shift = round(SHIFT_FRACTION * side)
    image = np.zeros((1, side, side), np.float32)
    centre = side // 2
    image[0, centre - 2 : centre + 2, centre - 2 : centre + 2] = 1.0
    augment = build_augmentation("shift", seed=1, image_size=side)
    offsets = []
    for _ in range(60):
        out = augment(image)[0]
        rows, cols = np.nonzero(out > 0.5 * out.max())
        offsets.append((rows.mean() - (centre - 0.5), cols.mean() - (centre - 0.5)))
    offsets = np.abs(np.asarray(offsets))
    assert offsets.max() <= shift + 0.6  # ±shift pixels (plus the half pixel of the 4×4 block's centre)
    assert offsets.max() >= 1.0  # and it does move things


def test_shift_changes_appearance_within_the_documented_ranges():
    flat = np.full((1, 28, 28), 0.5, np.float32)
    augment = build_augmentation("shift", seed=2, image_size=28)
    means = np.asarray([augment(flat).mean() for _ in range(80)])
    low = 0.5 * (1 - SHIFT_RANGES["scale"]) - SHIFT_RANGES["offset"] - 0.02
    high = 0.5 * (1 + SHIFT_RANGES["scale"]) + SHIFT_RANGES["offset"] + 0.02
    assert means.min() >= low and means.max() <= high
    assert means.std() > 0.01  # exposure really varies between draws
    ramp = np.tile(np.linspace(0.05, 0.95, 28, dtype=np.float32), (1, 28, 1))
    contrasts = {round(float(np.ptp(augment(ramp))), 3) for _ in range(40)}
    assert len(contrasts) > 5


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="valid: none, light, standard, strong, shift"):
        build_augmentation("extreme")


@pytest.mark.parametrize("preset, fraction", [("light", 0.02), ("standard", 0.04), ("strong", 0.064)])
def test_preset_translation_is_a_fraction_of_the_side_in_pixels(preset, fraction):
    from monai.transforms import RandAffine

    augment = build_augmentation(preset, seed=0, image_size=128)
    affine = next(t for t in augment.compose.transforms if isinstance(t, RandAffine))
    assert tuple(affine.rand_affine_grid.translate_range) == pytest.approx((fraction * 128, fraction * 128))
