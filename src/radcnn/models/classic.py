"""Classic hand-crafted baselines: HOG + logistic regression and LBP histograms + gradient boosting.

They exist so that "CNNs beat hand-designed features" is a measured table, not a sentence: each is a registered
model (`radcnn train --model hog_logreg`) trained on the same splits, scored by the same metrics and report, and
served by the same `predict`. A `ClassicModel` is an `nn.Module` whose forward computes the features with
scikit-image and returns the fitted scikit-learn estimator's log-odds, so every prediction path (evaluate,
report, predict, the HTTP API, TTA) works unchanged; it has no gradients, so gradient-based explanations do not
apply (the perturbation methods — occlusion, LIME, SHAP — do).

* ``hog_logreg``: HOG (Dalal & Triggs 2005; 9 orientations, cells of side/7 pixels, 2×2 blocks, L2-Hys) →
  standardisation → L2 logistic regression with balanced class weights.
* ``lbp_hgb``: uniform LBP codes (Ojala et al. 2002; 8 neighbours at radius 1 and 16 at radius 2) histogrammed
  over a 4×4 grid of regions → scikit-learn's HistGradientBoostingClassifier with balanced class weights.

Storage: the fitted estimators (one per label) are serialised with **skops** (`skops.io`), whose format holds no
pickle and loads only types on an allow-list, and the bytes travel as a uint8 tensor inside the run's ordinary
`best_model.safetensors`. Loading accepts skops' default-trusted types (scikit-learn estimators, numpy arrays)
plus `TRUSTED_TYPES` (the boosted trees) and refuses any other type the file names with a `ModelError` naming it,
before anything is constructed — a model file from elsewhere cannot execute code.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

from radcnn.errors import ConfigError, MissingExtraError, ModelError
from radcnn.models.registry import MODELS

# Types a classic model file may name beyond those skops trusts by default (scikit-learn estimators, numpy arrays):
# the fitted trees of HistGradientBoosting. Checked before loading; anything else is refused (see the docstring).
TRUSTED_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})
_LOGIT_CLIP = 1e-6


def _skimage_feature():
    try:
        from skimage import feature
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("scikit-image", "classic") from None
    return feature


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG descriptors of (N, 1, H, W) images in [0, 1] → (N, F) float32."""
    feature = _skimage_feature()
    side = int(min(images.shape[-2:]))
    cell = max(4, side // 7)
    return np.stack(
        [
            feature.hog(
                image[0], orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), block_norm="L2-Hys"
            )
            for image in images
        ]
    ).astype(np.float32)


def lbp_features(images: np.ndarray, grid: int = 4) -> np.ndarray:
    """Uniform-LBP histograms (P=8, R=1 and P=16, R=2) over a grid×grid layout of regions → (N, F) float32."""
    feature = _skimage_feature()
    rows = []
    for image in images:
        # LBP compares neighbours; on 8-bit values the comparisons are not swamped by float rounding noise.
        pixels = np.round(np.clip(image[0], 0.0, 1.0) * 255).astype(np.uint8)
        parts = []
        for points, radius in ((8, 1), (16, 2)):
            codes = feature.local_binary_pattern(pixels, points, radius, method="uniform")
            bins = points + 2
            for band in np.array_split(codes, grid, axis=0):
                for cell in np.array_split(band, grid, axis=1):
                    hist = np.bincount(cell.astype(np.int64).ravel(), minlength=bins)[:bins]
                    parts.append(hist / max(cell.size, 1))
        rows.append(np.concatenate(parts))
    return np.asarray(rows, dtype=np.float32)


def _hog_logreg(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(C=0.05, class_weight="balanced", max_iter=3000, random_state=seed)),
        ]
    )


def _lbp_hgb(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, class_weight="balanced", early_stopping=False, random_state=seed
    )


FAMILIES = {"hog_logreg": (hog_features, _hog_logreg), "lbp_hgb": (lbp_features, _lbp_hgb)}


class ClassicModel(nn.Module):
    """Hand-crafted features + one fitted scikit-learn classifier per output; forward returns log-odds (N, C)."""

    is_classic = True

    def __init__(self, family: str, num_outputs: int = 1):
        super().__init__()
        if family not in FAMILIES:
            raise ConfigError(f"unknown classic model {family!r}; valid: {', '.join(FAMILIES)}")
        self.family, self.num_outputs = family, num_outputs
        self.features = FAMILIES[family][0]
        self.estimators: list | None = None
        self.register_buffer("estimators_skops", torch.zeros(0, dtype=torch.uint8))

    # ----- training (outside Lightning: a convex fit / boosting has no epochs)
    def fit_arrays(self, images: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> ClassicModel:
        """Fit one estimator per label column on the known (non-NaN) labels; both classes must be present."""
        x = self.features(np.asarray(images, dtype=np.float32))
        estimators = []
        for j in range(labels.shape[1]):
            known = ~np.isnan(labels[:, j])
            y = labels[known, j] > 0.5
            if y.all() or not y.any():
                raise ConfigError(f"{self.family}: output {j} has one class in the training split; cannot fit it")
            estimators.append(FAMILIES[self.family][1](seed).fit(x[known], y.astype(int)))
        self.estimators = estimators
        self.estimators_skops = torch.from_numpy(np.frombuffer(_dumps(estimators), dtype=np.uint8).copy())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.estimators is None:
            raise ModelError(f"{self.family} has not been fitted (train it with `radcnn train --model {self.family}`)")
        features = self.features(x.detach().float().cpu().numpy())
        probs = np.stack([est.predict_proba(features)[:, 1] for est in self.estimators], axis=1)
        probs = np.clip(probs, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
        return torch.from_numpy(np.log(probs / (1 - probs)).astype(np.float32))

    # ----- loading (radcnn.models.checkpoint calls `prepare_state` before the strict state-dict load)
    def prepare_state(self, state: dict[str, torch.Tensor]) -> None:
        """Size the byte buffer like the file's and restore the estimators from it (allow-listed types only)."""
        data = state.get("estimators_skops")
        if data is None or data.numel() == 0:
            raise ModelError(f"{self.family}: the model file holds no fitted estimators")
        self.estimators_skops = torch.zeros_like(data)
        self.estimators = _loads(data.numpy().tobytes(), expected=self.num_outputs)


def _dumps(estimators: list) -> bytes:
    try:
        from skops.io import dumps
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("skops", "classic") from None
    return dumps(estimators)


def _loads(data: bytes, *, expected: int) -> list:
    try:
        from skops.io import get_untrusted_types, loads
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("skops", "classic") from None
    try:
        untrusted = get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - skops raises various errors for corrupt archives
        raise ModelError(f"the stored classic estimators cannot be read ({type(exc).__name__}: {exc})") from None
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise ModelError(f"the stored classic model names types radcnn does not trust: {', '.join(refused)}")
    estimators = loads(io.BytesIO(data).getvalue(), trusted=list(untrusted))
    if not isinstance(estimators, list) or len(estimators) != expected:
        raise ModelError(f"the stored classic model has {len(estimators)} estimator(s), expected {expected}")
    return estimators


@MODELS.register("hog_logreg", summary="HOG features + logistic regression (classic baseline)", tags=("classic",))
def build_hog_logreg(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    return ClassicModel("hog_logreg", num_outputs)


@MODELS.register("lbp_hgb", summary="LBP histograms + gradient boosting (classic baseline)", tags=("classic",))
def build_lbp_hgb(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    return ClassicModel("lbp_hgb", num_outputs)
