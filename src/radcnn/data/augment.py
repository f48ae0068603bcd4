"""Augmentation presets built from MONAI transforms, applied to the training split only.

Radiographs tolerate small geometric changes (patient positioning) and exposure/contrast changes (different
scanners), but not large rotations or vertical flips (anatomy has an up and a down). Left-right flips are kept
in "standard", "strong" and "shift": the tasks radcnn ships (nodule, consolidation, pneumonia) are not
lateralised. Every transform's random state comes from the preset's seed, so an augmented run is reproducible.

"shift" is built for cohort shift rather than for the validation split: cohorts differ in exposure and
processing far more than in geometry, so it keeps the geometry small (left-right flip, a shift of at most
``SHIFT_FRACTION`` of the side, i.e. ±2 px at 28 px) and spends its randomness on appearance — gamma/contrast,
intensity scale and offset, blur and noise — each drawn from the ranges in ``SHIFT_RANGES``.
"""

from __future__ import annotations

import numpy as np

PRESETS = ("none", "light", "standard", "strong", "shift")

# Appearance ranges of the "shift" preset (documented in docs/training.md; tests check the outputs stay in them).
SHIFT_FRACTION = 2 / 28  # largest translation, as a fraction of the image side (±2 px at 28 px)
SHIFT_RANGES = {
    "gamma": (0.7, 1.5),  # RandAdjustContrast: x -> x ** gamma after min-max scaling
    "scale": 0.15,  # RandScaleIntensity: x * (1 + f), f in [-0.15, 0.15]
    "offset": 0.08,  # RandShiftIntensity: x + o, o in [-0.08, 0.08]
    "blur_sigma": (0.25, 0.8),  # RandGaussianSmooth, pixels
    "noise_std": 0.02,  # RandGaussianNoise, largest standard deviation
}


def build_augmentation(preset: str, seed: int = 0, *, image_size: int | None = None):
    """Return a callable (1, H, W) float32 array → augmented array in [0, 1], or None for "none".

    `image_size` (the side in pixels) sets the presets' translation in pixels (default 28 px: ±2 px for "shift",
    ±4 % of the side × strength for light/standard/strong).
    """
    if preset == "none":
        return None
    if preset == "shift":
        return _ArrayAugmentation(_shift_steps(image_size), seed)
    from monai.transforms import RandAdjustContrast, RandAffine, RandFlip, RandGaussianNoise, RandRotate, RandZoom

    strength = {"light": 0.5, "standard": 1.0, "strong": 1.6}.get(preset)
    if strength is None:
        from radcnn.errors import ConfigError

        raise ConfigError(f"unknown augmentation preset {preset!r}; valid: {', '.join(PRESETS)}")
    side = float(image_size or 28)
    steps = [
        RandRotate(range_x=np.deg2rad(7 * strength), prob=0.5, padding_mode="zeros"),
        RandAffine(
            prob=0.5,
            # MONAI reads translate_range in pixels: ±4 % of the side (× strength), not ±0.04 px.
            translate_range=(0.04 * strength * side, 0.04 * strength * side),
            shear_range=(0.03 * strength, 0.03 * strength),
            padding_mode="zeros",
        ),
        RandZoom(min_zoom=1 - 0.08 * strength, max_zoom=1 + 0.08 * strength, prob=0.5, padding_mode="constant"),
        RandAdjustContrast(gamma=(1 - 0.25 * strength, 1 + 0.25 * strength), prob=0.5),
        RandGaussianNoise(prob=0.3, std=0.015 * strength),
    ]
    if preset != "light":
        steps.insert(0, RandFlip(spatial_axis=1, prob=0.5))
    return _ArrayAugmentation(steps, seed)


def _shift_steps(image_size: int | None) -> list:
    from monai.transforms import (
        RandAdjustContrast,
        RandAffine,
        RandFlip,
        RandGaussianNoise,
        RandGaussianSmooth,
        RandScaleIntensity,
        RandShiftIntensity,
    )

    r = SHIFT_RANGES
    shift = max(1.0, float(round(SHIFT_FRACTION * (image_size or 28))))
    return [
        RandFlip(spatial_axis=1, prob=0.5),
        # Border padding repeats the edge row instead of inventing a black frame the other cohorts never have.
        RandAffine(prob=0.8, translate_range=(shift, shift), padding_mode="border"),
        RandAdjustContrast(gamma=r["gamma"], prob=0.5),
        RandScaleIntensity(factors=r["scale"], prob=0.5),
        RandShiftIntensity(offsets=r["offset"], prob=0.5),
        RandGaussianSmooth(sigma_x=r["blur_sigma"], sigma_y=r["blur_sigma"], prob=0.2),
        RandGaussianNoise(prob=0.2, std=r["noise_std"]),
    ]


class _ArrayAugmentation:
    """Applies a MONAI Compose to one image, clips to [0, 1] and returns a plain float32 numpy array."""

    def __init__(self, steps: list, seed: int):
        from monai.transforms import Compose, ScaleIntensityRange

        steps = [*steps, ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True)]
        self.compose = Compose(steps).set_random_state(seed=seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = self.compose(image)
        return np.asarray(out.array if hasattr(out, "array") else out, dtype=np.float32)
