"""Augmentation presets built from MONAI transforms, applied to the training split only.

Radiographs tolerate small geometric changes (patient positioning) and exposure/contrast changes (different
scanners), but not large rotations or vertical flips (anatomy has an up and a down). Left-right flips are kept
in "standard" and "strong": the tasks radcnn ships (nodule, consolidation) are not lateralised. Every transform's
random state comes from the preset's seed, so an augmented run is reproducible.
"""

from __future__ import annotations

import numpy as np

PRESETS = ("none", "light", "standard", "strong")


def build_augmentation(preset: str, seed: int = 0):
    """Return a callable (1, H, W) float32 array → augmented array in [0, 1], or None for "none"."""
    if preset == "none":
        return None
    from monai.transforms import (
        Compose,
        RandAdjustContrast,
        RandAffine,
        RandFlip,
        RandGaussianNoise,
        RandRotate,
        RandZoom,
        ScaleIntensityRange,
    )

    strength = {"light": 0.5, "standard": 1.0, "strong": 1.6}.get(preset)
    if strength is None:
        from radcnn.errors import ConfigError

        raise ConfigError(f"unknown augmentation preset {preset!r}; valid: {', '.join(PRESETS)}")
    steps = [
        RandRotate(range_x=np.deg2rad(7 * strength), prob=0.5, padding_mode="zeros"),
        RandAffine(
            prob=0.5,
            translate_range=(0.04 * strength, 0.04 * strength),
            shear_range=(0.03 * strength, 0.03 * strength),
            padding_mode="zeros",
        ),
        RandZoom(min_zoom=1 - 0.08 * strength, max_zoom=1 + 0.08 * strength, prob=0.5, padding_mode="constant"),
        RandAdjustContrast(gamma=(1 - 0.25 * strength, 1 + 0.25 * strength), prob=0.5),
        RandGaussianNoise(prob=0.3, std=0.015 * strength),
    ]
    if preset != "light":
        steps.insert(0, RandFlip(spatial_axis=1, prob=0.5))
    steps.append(ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True))
    compose = Compose(steps).set_random_state(seed=seed)
    return _ArrayAugmentation(compose)


class _ArrayAugmentation:
    """Applies a MONAI Compose to one image and returns a plain float32 numpy array."""

    def __init__(self, compose):
        self.compose = compose

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = self.compose(image)
        return np.asarray(out.array if hasattr(out, "array") else out, dtype=np.float32)
