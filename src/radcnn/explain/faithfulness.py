"""Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE) and their AUCs, against random orders.

Deletion replaces the most-attributed pixels first by a blurred copy of the image (`fill`, see
`radcnn.explain.perturb` for why not black or the mean) and records the target's probability after each step; a
faithful map makes it fall fast, so a *lower* deletion AUC is better. Insertion starts from the blurred copy (the
RISE convention) and puts the most-attributed pixels back first; a *higher* insertion AUC is better. With the
default fill both curves walk between the same two images, in opposite directions.

Every map is compared with random orderings of the same pixels on the same image (same fill, same steps), so the
numbers say how much better than chance the map ranks what matters — an absolute AUC depends on the image and
the model as much as on the map. Ties in a map (a superpixel method paints whole segments with one value) are
broken at random, so a flat map scores like a random one.

The curves are pure functions of a scoring callable, so they can be checked on a hand-made "model".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from radcnn.explain.perturb import blur, fill_like

ScoreFn = Callable[[np.ndarray], np.ndarray]  # (N, 1, H, W) float32 → (N,) target probability


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion curves of one map on one image, with the mean of `n_random` random orderings."""

    fractions: np.ndarray  # (steps + 1,) fraction of pixels removed / inserted
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_random: np.ndarray
    insertion_random: np.ndarray

    @property
    def deletion_auc(self) -> float:
        return curve_auc(self.fractions, self.deletion)

    @property
    def insertion_auc(self) -> float:
        return curve_auc(self.fractions, self.insertion)

    @property
    def deletion_auc_random(self) -> float:
        return curve_auc(self.fractions, self.deletion_random)

    @property
    def insertion_auc_random(self) -> float:
        return curve_auc(self.fractions, self.insertion_random)

    @property
    def deletion_beats_random(self) -> bool:
        return self.deletion_auc < self.deletion_auc_random

    @property
    def insertion_beats_random(self) -> bool:
        return self.insertion_auc > self.insertion_auc_random


def curve_auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Area under a curve sampled at `fractions` (trapezoidal rule)."""
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(values, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def pixel_order(attribution: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices from most to least attributed; equal values in random order."""
    flat = np.asarray(attribution, dtype=np.float64).ravel()
    tiebreak = rng.permutation(flat.size)
    # lexsort sorts by the last key first: descending attribution, then the random tie-break.
    return np.lexsort((tiebreak, -flat))


def step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """How many pixels are changed at each of the `steps + 1` points (0 … all)."""
    return np.round(np.linspace(0, n_pixels, steps + 1)).astype(np.int64)


def _curve(
    score: ScoreFn,
    start: np.ndarray,
    end: np.ndarray,
    order: np.ndarray,
    counts: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Scores of images that take `end`'s values at the first `counts[k]` pixels of `order`, `start` elsewhere."""
    shape = start.shape  # (C, H, W)
    start_flat = start.reshape(shape[0], -1)
    end_flat = end.reshape(shape[0], -1)
    values = np.empty(len(counts), dtype=np.float64)
    for first in range(0, len(counts), batch_size):
        chunk = counts[first : first + batch_size]
        batch = np.repeat(start_flat[None], len(chunk), axis=0)
        for j, count in enumerate(chunk):
            changed = order[:count]
            batch[j][:, changed] = end_flat[:, changed]
        values[first : first + len(chunk)] = score(batch.reshape(len(chunk), *shape))
    return values


def faithfulness_curves(
    score: ScoreFn,
    image: np.ndarray,
    attribution: np.ndarray,
    *,
    steps: int = 25,
    fill: str = "blur",
    n_random: int = 3,
    seed: int = 0,
    batch_size: int = 64,
) -> FaithfulnessCurves:
    """Deletion and insertion curves of `attribution` (H, W) for `image` (C, H, W) in [0, 1].

    `score` maps a batch (N, C, H, W) to the target's probability (N,). The random baseline averages `n_random`
    random pixel orderings drawn from `seed`.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    attribution = np.asarray(attribution, dtype=np.float32)
    if attribution.shape != image.shape[-2:]:
        raise ValueError(f"attribution shape {attribution.shape} does not match the image {image.shape[-2:]}")
    if steps < 1 or n_random < 1:
        raise ValueError("steps and n_random must be at least 1")
    tensor = torch.from_numpy(image)[None]
    removed = fill_like(tensor, fill)[0].numpy()
    blurred = blur(tensor)[0].numpy()
    rng = np.random.default_rng(seed)
    counts = step_counts(attribution.size, steps)
    order = pixel_order(attribution, rng)
    deletion = _curve(score, image, removed, order, counts, batch_size)
    insertion = _curve(score, blurred, image, order, counts, batch_size)
    random_del, random_ins = [], []
    for _ in range(n_random):
        shuffled = rng.permutation(attribution.size)
        random_del.append(_curve(score, image, removed, shuffled, counts, batch_size))
        random_ins.append(_curve(score, blurred, image, shuffled, counts, batch_size))
    return FaithfulnessCurves(
        fractions=counts / attribution.size,
        deletion=deletion,
        insertion=insertion,
        deletion_random=np.mean(random_del, axis=0),
        insertion_random=np.mean(random_ins, axis=0),
    )
