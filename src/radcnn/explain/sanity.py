"""Model-parameter randomisation test (Adebayo et al. 2018, "Sanity checks for saliency maps"), cascading.

Starting from the output layer, the weights of one layer after another are re-initialised (each step keeps the
earlier steps' randomisation) and the maps are recomputed on the same images. An explanation that depends on what
the model learned must change: its Spearman rank correlation with the trained model's map should fall towards 0.
A method whose maps stay similar once every layer is random (correlation above `threshold`) explains the image,
not the model — it is flagged as failing.

Correlations are on the signed maps. A map that becomes constant has no ranking left; it counts as correlation 0
(it has changed completely), rather than NaN, so a method that goes blank on a random model passes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from radcnn.explain.perturb import seeded

log = logging.getLogger(__name__)

MapsFn = Callable[[nn.Module, torch.Tensor], np.ndarray]  # (model, images (N, C, H, W)) → maps (N, H, W)
SANITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class SanityResult:
    """Mean (over images) Spearman correlation with the trained model's maps after each cascade step."""

    layers: tuple[str, ...]  # step k randomises layers[0..k] (output side first)
    correlations: np.ndarray  # (steps,) mean over images
    per_image: np.ndarray  # (steps, N)
    threshold: float

    @property
    def final_correlation(self) -> float:
        """Correlation once every randomised layer is random (the last cascade step)."""
        return float(self.correlations[-1])

    @property
    def passed(self) -> bool:
        return bool(self.final_correlation < self.threshold)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get average ranks); 0 when either map is constant."""
    from scipy.stats import rankdata

    x, y = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, output side first (reverse definition order)."""
    names = [name for name, module in model.named_modules() if name and any(True for _ in module.parameters(False))]
    return names[::-1]


def cascade_steps(n_layers: int, max_steps: int | None) -> list[int]:
    """Which cascade depths to evaluate: all, or `max_steps` spread out, always the first and the last layer."""
    if max_steps is None or n_layers <= max_steps:
        return list(range(n_layers))
    picks = np.unique(np.round(np.geomspace(1, n_layers, max_steps)).astype(int) - 1)
    return [int(i) for i in picks]


def randomize_layer(module: nn.Module, seed: int) -> None:
    """Re-initialise one module's own parameters (and buffers such as BatchNorm statistics) deterministically."""
    with seeded(seed), torch.no_grad():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            for param in module.parameters(recurse=False):
                param.normal_(0.0, 0.02)


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor,
    maps_fn: MapsFn,
    *,
    max_steps: int | None = 6,
    threshold: float = SANITY_THRESHOLD,
    seed: int = 0,
) -> SanityResult:
    """Run the cascading randomisation test of `maps_fn` on `images`; `model` itself is never modified."""
    reference = np.asarray(maps_fn(model, images))
    layers = parameter_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no parameters to randomise")
    work = copy.deepcopy(model).eval()
    steps = cascade_steps(len(layers), max_steps)
    done = 0
    names, rows = [], []
    for depth in steps:
        while done <= depth:
            randomize_layer(work.get_submodule(layers[done]), seed + done)
            done += 1
        maps = np.asarray(maps_fn(work, images))
        rows.append([spearman(reference[i], maps[i]) for i in range(len(reference))])
        names.append(layers[depth])
        log.debug("sanity: randomised down to %s, mean rho %.3f", layers[depth], np.mean(rows[-1]))
    per_image = np.asarray(rows, dtype=np.float64)
    return SanityResult(tuple(names), per_image.mean(axis=1), per_image, float(threshold))
