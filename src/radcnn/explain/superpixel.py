"""LIME and Kernel SHAP on SLIC superpixels (Captum `Lime` / `KernelShap`, scikit-image `slic`).

Both switch superpixels off (replaced by the blurred image, `ExplainSettings.fill`) at random, run the model on the
perturbed images in batches (`perturbations_per_eval`), and fit a weighted linear model of the target's
probability on the on/off pattern; a superpixel's coefficient is its attribution, painted over its pixels.

* LIME (Ribeiro et al. 2016) as in the reference implementation for images: ridge regression (alpha 1), samples
  weighted by an exponential kernel (width 0.25) on the cosine distance between the on/off vector and all-on.
* Kernel SHAP (Lundberg & Lee 2017): the Shapley kernel, so coefficients estimate Shapley values.

Default: 100 superpixels and 300 samples in batches of 50 — for the seed CNN at 224×224 on the 2-core CPU about
5 s (LIME) and 4 s (Kernel SHAP) per image, under the 10 s target (benchmarks/explain_speed.py). Three samples
per superpixel give stable rankings of the few segments that matter; raise `n_samples` for smoother maps.
"""

from __future__ import annotations

import numpy as np
import torch

from radcnn.explain.perturb import fill_like, seeded
from radcnn.explain.registry import EXPLAINERS, ExplainSettings, require_captum
from radcnn.explain.targets import ScoredModel, channels_last

SUPERPIXEL_SAMPLES = 300
LIME_KERNEL_WIDTH = 0.25
SLIC_SIGMA = 1.0  # pre-smoothing, so pixel noise does not fragment segments


def superpixels(image: np.ndarray, n_segments: int = 100, compactness: float = 0.1) -> np.ndarray:
    """SLIC segments of a (H, W) [0, 1] image as int64 labels 0..K-1.

    A flat or tiny image can make SLIC return one segment; then a regular grid of about `n_segments` squares
    is used instead, so the methods always have regions to switch off.
    """
    require_captum()
    from skimage.segmentation import slic

    image = np.asarray(image, dtype=np.float64)
    segments = slic(
        image,
        n_segments=int(n_segments),
        compactness=float(compactness),
        sigma=SLIC_SIGMA,
        channel_axis=None,
        start_label=0,
        enforce_connectivity=True,
    )
    if len(np.unique(segments)) < max(2, n_segments // 4):
        segments = grid_segments(image.shape, n_segments)
    return np.unique(segments, return_inverse=True)[1].reshape(image.shape).astype(np.int64)


def grid_segments(shape: tuple[int, int], n_segments: int) -> np.ndarray:
    """About `n_segments` near-square cells covering a (H, W) image."""
    h, w = shape
    side = max(1, int(round(np.sqrt(h * w / max(n_segments, 1)))))
    rows, cols = np.arange(h)[:, None] // side, np.arange(w)[None, :] // side
    return (rows * ((w + side - 1) // side) + cols).astype(np.int64)


def _lime_similarity(_original, _perturbed, perturbed_interpretable, **_kwargs) -> torch.Tensor:
    """Reference-LIME kernel: exp(-d² / width²), d = cosine distance between the on/off vector and all-on."""
    on = perturbed_interpretable.float().sum()
    total = perturbed_interpretable.numel()
    cosine = on.sqrt() / np.sqrt(total) if on > 0 else torch.tensor(0.0)
    distance = 1.0 - cosine
    return torch.exp(-(distance**2) / LIME_KERNEL_WIDTH**2)


def _superpixel_method(name: str, target: ScoredModel, images, targets, settings: ExplainSettings, seeds):
    require_captum()
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import KernelShap, Lime

    if name == "lime":
        method = Lime(
            target.probability_model,
            interpretable_model=SkLearnRidge(alpha=1.0),
            similarity_func=_lime_similarity,
        )
    else:
        method = KernelShap(target.probability_model)
    n_samples = settings.n_samples or SUPERPIXEL_SAMPLES
    fills = fill_like(images, settings.fill)
    maps = []
    for i in range(len(images)):
        segments = superpixels(images[i, 0].numpy(), settings.n_segments, settings.compactness)
        mask = torch.from_numpy(segments)[None, None].expand(1, *images.shape[1:])
        with seeded(seeds[i]), torch.no_grad(), channels_last(target.model):
            attr = method.attribute(
                images[i : i + 1],
                baselines=fills[i : i + 1],
                target=int(targets[i]),
                feature_mask=mask,
                n_samples=n_samples,
                perturbations_per_eval=settings.perturbations_per_eval,
            )
        maps.append(attr.detach().float().sum(dim=1))
    return torch.cat(maps).numpy().astype(np.float32)


@EXPLAINERS.register(
    "lime",
    summary="LIME on SLIC superpixels: ridge surrogate of the probability (Captum Lime)",
    needs_conv=False,
    output="probability",
    stochastic=True,
)
def lime(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """LIME."""
    return _superpixel_method("lime", target, images, targets, settings, seeds)


@EXPLAINERS.register(
    "kernel_shap",
    summary="Kernel SHAP on SLIC superpixels: Shapley-kernel regression of the probability (Captum KernelShap)",
    needs_conv=False,
    output="probability",
    stochastic=True,
)
def kernel_shap(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Kernel SHAP."""
    return _superpixel_method("kernel_shap", target, images, targets, settings, seeds)
