"""Pixel attributions from Captum: Integrated Gradients, Gradient SHAP and Occlusion.

* Integrated Gradients (Sundararajan et al. 2017) integrates the logit's gradient along the straight path from a
  black image (air) to the input; the attributions sum to logit(input) − logit(black).
* Gradient SHAP (Lundberg & Lee 2017) is its expectation over several baselines and random points on the paths;
  the baselines are black, the image's mean intensity and a blurred copy, so no single reference dominates.
* Occlusion (Zeiler & Fergus 2014) slides a square patch that shows the blurred image instead (see
  `radcnn.explain.perturb`; `ExplainSettings.fill`) and records the drop in the target's probability; a pixel's
  value is the mean drop over the patches covering it.
"""

from __future__ import annotations

import numpy as np
import torch

from radcnn.explain.perturb import blur, fill_like, seeded
from radcnn.explain.registry import EXPLAINERS, ExplainSettings, require_captum
from radcnn.explain.targets import ScoredModel, channels_last

GRADIENT_SHAP_SAMPLES = 16
# Images × path steps per backward pass in Integrated Gradients: bounds memory for large models and inputs.
IG_INTERNAL_BATCH = 32


@EXPLAINERS.register(
    "integrated_gradients",
    summary="Integrated Gradients from a black baseline (Captum); signed, sums to the logit change",
    needs_conv=False,
    needs_grad=True,
    output="logit",
    stochastic=False,
)
def integrated_gradients(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Integrated Gradients."""
    require_captum()
    from captum.attr import IntegratedGradients

    method = IntegratedGradients(target.model)
    with torch.enable_grad():
        attr = method.attribute(
            images,
            baselines=torch.zeros_like(images),
            target=targets.tolist(),
            n_steps=settings.ig_steps,
            internal_batch_size=IG_INTERNAL_BATCH,
        )
    return attr.detach().float().sum(dim=1).numpy().astype(np.float32)


def gradient_shap_baselines(image: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) → (3, C, H, W): black, the image's mean intensity, and a blurred copy."""
    return torch.cat([torch.zeros_like(image), fill_like(image, "mean"), blur(image)])


@EXPLAINERS.register(
    "gradient_shap",
    summary="Gradient SHAP: expected gradients over black / mean / blurred baselines (Captum)",
    needs_conv=False,
    needs_grad=True,
    output="logit",
    stochastic=True,
)
def gradient_shap(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Gradient SHAP."""
    require_captum()
    from captum.attr import GradientShap

    method = GradientShap(target.model)
    n_samples = settings.n_samples or GRADIENT_SHAP_SAMPLES
    maps = []
    # One image at a time, each with its own seed, so an image's map does not depend on its batch neighbours.
    for i in range(len(images)):
        image = images[i : i + 1]
        with seeded(seeds[i]), torch.enable_grad():
            attr = method.attribute(
                image, baselines=gradient_shap_baselines(image), target=int(targets[i]), n_samples=n_samples
            )
        maps.append(attr.detach().float().sum(dim=1))
    return torch.cat(maps).numpy().astype(np.float32)


def occlusion_geometry(height: int, width: int, settings: ExplainSettings) -> tuple[int, int]:
    """(window, stride): by default a patch of 1/8 of the shorter side moved by half a patch (225 patches)."""
    window = settings.occlusion_window or max(2, round(min(height, width) / 8))
    stride = settings.occlusion_stride or max(1, window // 2)
    return int(window), int(stride)


@EXPLAINERS.register(
    "occlusion",
    summary="Occlusion: drop in probability when a sliding patch is hidden (Captum)",
    needs_conv=False,
    output="probability",
    stochastic=False,
)
def occlusion(
    target: ScoredModel, images: torch.Tensor, targets: torch.Tensor, settings: ExplainSettings, seeds: list[int]
) -> np.ndarray:
    """Occlusion."""
    require_captum()
    from captum.attr import Occlusion

    window, stride = occlusion_geometry(*images.shape[-2:], settings)
    channels = images.shape[1]
    with torch.no_grad(), channels_last(target.model):
        attr = Occlusion(target.probability_model).attribute(
            images,
            sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride),
            baselines=fill_like(images, settings.fill),
            target=targets.tolist(),
            perturbations_per_eval=settings.perturbations_per_eval,
        )
    return attr.detach().float().sum(dim=1).numpy().astype(np.float32)
