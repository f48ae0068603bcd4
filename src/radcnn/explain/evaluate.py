"""The explanation score table: faithfulness, localisation and the sanity check, per method.

`score_explanations` scores any model on given images and lesion masks; `evaluate_run_explanations` does it for
a training run on the split's **true-positive images that have lesion boxes** (label positive, probability at or
above the run's threshold) — the images where "where did the model look?" has a right answer — and writes
``explain_eval.json`` into the run directory.

Per method (means over the images):
  deletion AUC vs random (lower is better), insertion AUC vs random (higher is better), share of images where
  deletion beats random, pointing-game hit rate (with the standard 15 px @ 224 tolerance, and strictly inside
  a box), positive attribution mass inside the boxes (chance level: the
  boxes' share of the area), the sanity check's rank correlation once every layer is random and pass/fail, and
  seconds per image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radcnn.errors import DataError
from radcnn.explain.faithfulness import faithfulness_curves
from radcnn.explain.localisation import boxes_mask, mass_inside, pointing_game, standard_tolerance
from radcnn.explain.registry import ExplainSettings, get_explainer, parse_methods
from radcnn.explain.run import explain_images, image_seeds
from radcnn.explain.runs import boxes_by_path, read_run_images, target_label
from radcnn.explain.sanity import SANITY_THRESHOLD, cascading_randomization
from radcnn.explain.targets import ScoredModel
from radcnn.io import json_text
from radcnn.models.spec import ModelSpec
from radcnn.runs import EXPLAIN_EVAL, RunDir

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MethodScores:
    method: str
    n_images: int
    deletion_auc: float
    deletion_auc_random: float
    deletion_win_rate: float  # share of images whose deletion AUC is below their random one
    insertion_auc: float
    insertion_auc_random: float
    pointing_game: float  # hit rate with the standard tolerance (15 px at 224×224, scaled)
    pointing_game_strict: float  # hit rate with the maximum strictly inside a box
    mass_in_boxes: float
    box_area: float  # mean share of the image inside the boxes: the chance level of mass_in_boxes
    sanity_correlation: float
    sanity_passed: bool
    sanity_curve: tuple[tuple[str, float], ...]  # (layer randomised down to, mean correlation)
    seconds_per_image: float

    @property
    def deletion_beats_random(self) -> bool:
        return self.deletion_auc < self.deletion_auc_random


@dataclass(frozen=True)
class ExplainEvaluation:
    target: str
    n_images: int
    scores: list[MethodScores]
    sources: list[str]
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "n_images": self.n_images,
            "images": self.sources,
            "settings": self.settings,
            "methods": {s.method: {**asdict(s), "deletion_beats_random": s.deletion_beats_random} for s in self.scores},
        }


def score_explanations(
    model: nn.Module,
    spec: ModelSpec,
    images: np.ndarray,
    masks: Sequence[np.ndarray],
    methods: str | Sequence[str],
    *,
    target: str | None = None,
    seed: int = 0,
    settings: ExplainSettings | None = None,
    steps: int = 25,
    n_random: int = 3,
    deletion_fill: str = "blur",
    sanity_images: int = 4,
    sanity_steps: int | None = 6,
    sanity_threshold: float = SANITY_THRESHOLD,
    sources: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ExplainEvaluation:
    """Score each method on (N, C, H, W) `images` at the model's input size with boolean (H, W) lesion `masks`."""
    names = parse_methods(methods)
    settings = settings or ExplainSettings()
    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0 or len(images) != len(masks):
        raise DataError(f"need one lesion mask per image; got {len(images)} image(s) and {len(masks)} mask(s)")
    scored = ScoredModel(model, spec)
    label = target if target is not None else spec.label_names[0]
    # Progress units: one per image × method explained, one per image × method scored, one per sanity check.
    total = len(names) * (2 * len(images) + 1)
    explain_progress = (lambda d, _t: progress(d, total)) if progress is not None else None
    explanations = explain_images(
        model, spec, images, names, target=label, seed=seed, settings=settings, progress=explain_progress
    )
    index = explanations[0].target_index
    n_sanity = max(1, min(sanity_images, len(images)))
    done = len(names) * len(images)

    def score(batch: np.ndarray) -> np.ndarray:
        return scored.target_scores(batch, [index] * len(batch))

    results = []
    for name in names:
        curves, hits, strict, mass, area = [], [], [], [], []
        tolerance = standard_tolerance(images.shape[-2:])
        for i, item in enumerate(explanations):
            attribution = item.maps[name]
            curves.append(
                faithfulness_curves(
                    score, images[i], attribution, steps=steps, fill=deletion_fill, n_random=n_random, seed=seed
                )
            )
            mask = np.asarray(masks[i], dtype=bool)
            hits.append(pointing_game(attribution, mask, tolerance=tolerance))
            strict.append(pointing_game(attribution, mask))
            mass.append(mass_inside(attribution, mask))
            area.append(mask.mean())
            done += 1
            if progress is not None:
                progress(done, total)
        sanity = _sanity(name, spec, model, images[:n_sanity], index, settings, seed, sanity_steps, sanity_threshold)
        done += 1
        if progress is not None:
            progress(done, total)
        results.append(
            MethodScores(
                method=name,
                n_images=len(images),
                deletion_auc=float(np.mean([c.deletion_auc for c in curves])),
                deletion_auc_random=float(np.mean([c.deletion_auc_random for c in curves])),
                deletion_win_rate=float(np.mean([c.deletion_beats_random for c in curves])),
                insertion_auc=float(np.mean([c.insertion_auc for c in curves])),
                insertion_auc_random=float(np.mean([c.insertion_auc_random for c in curves])),
                pointing_game=float(np.mean(hits)),
                pointing_game_strict=float(np.mean(strict)),
                mass_in_boxes=float(np.nanmean(mass)) if not np.isnan(mass).all() else float("nan"),
                box_area=float(np.mean(area)),
                sanity_correlation=sanity.final_correlation,
                sanity_passed=sanity.passed,
                sanity_curve=tuple(zip(sanity.layers, (float(c) for c in sanity.correlations), strict=True)),
                seconds_per_image=float(np.mean([e.seconds[name] for e in explanations])),
            )
        )
    used = {
        "steps": steps,
        "n_random": n_random,
        "deletion_fill": deletion_fill,
        "sanity_images": n_sanity,
        "sanity_threshold": sanity_threshold,
        "pointing_tolerance_px": standard_tolerance(images.shape[-2:]),
        "seed": seed,
        **{k: v for k, v in asdict(settings).items() if v is not None},
    }
    sources = list(sources) if sources is not None else [e.source for e in explanations]
    return ExplainEvaluation(explanations[0].target, len(images), results, sources, used)


def _sanity(name, spec, model, images, index, settings, seed, max_steps, threshold):
    builder = get_explainer(name).builder
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    targets = torch.full((len(images),), index, dtype=torch.long)
    seeds = image_seeds(seed, len(images))

    def maps_fn(variant: nn.Module, batch: torch.Tensor) -> np.ndarray:
        return builder(ScoredModel(variant, spec), batch, targets, settings, seeds)

    return cascading_randomization(model, tensor, maps_fn, max_steps=max_steps, threshold=threshold, seed=seed)


def evaluate_run_explanations(
    run_dir: str | Path,
    *,
    methods: str | Sequence[str] = "all",
    split: str = "test",
    max_images: int = 20,
    target: str | None = None,
    boxes_csv: str | Path | None = None,
    seed: int = 0,
    settings: ExplainSettings | None = None,
    sanity_images: int = 4,
    progress: Progress | None = None,
) -> ExplainEvaluation:
    """Score explanations on up to `max_images` true-positive `split` images with boxes; writes explain_eval.json."""
    names = parse_methods(methods)
    run = RunDir.open(run_dir)
    run_dir = run.path
    (model, spec), config = run.load_model(), run.config()
    label = target_label(spec, target)
    index = spec.label_names.index(label)
    rows = run.split_rows(split)
    boxes = boxes_by_path(config.data.source, boxes_csv=boxes_csv)
    rows = rows[rows[label] == 1] if label in rows else rows.iloc[:0]
    rows = rows.iloc[np.random.default_rng(seed).permutation(len(rows))]
    threshold = float(spec.thresholds[index]) if spec.task == "binary" else 0.5
    scored = ScoredModel(model, spec)
    chosen, n_boxed = [], 0
    # Read the shuffled positives a chunk at a time and stop once enough true positives are found.
    for start in range(0, len(rows), 4 * max_images):
        boxed = [
            im
            for im in read_run_images(rows.iloc[start : start + 4 * max_images], spec, label, boxes, key=run.key)
            if im.boxes
        ]
        n_boxed += len(boxed)
        if boxed:
            probs = scored.predict(np.stack([im.array for im in boxed]))[:, index]
            chosen += [im for im, p in zip(boxed, probs, strict=True) if p >= threshold]
        if len(chosen) >= max_images:
            break
    chosen = chosen[:max_images]
    if not n_boxed:
        raise DataError(
            f"{run_dir}: no positive {label!r} image of the {split} split has lesion boxes "
            f"(boxes come from the labels CSV's 'boxes' column or --boxes BBox_List_2017.csv)"
        )
    if not chosen:
        raise DataError(
            f"{run_dir}: none of the {n_boxed} positive {split} image(s) with boxes is a true positive "
            f"at threshold {threshold:.3f}; localisation scores need correctly detected lesions"
        )
    size = tuple(int(s) for s in spec.input_size)
    result = score_explanations(
        model,
        spec,
        np.stack([im.array for im in chosen]),
        [boxes_mask(list(im.boxes), size) for im in chosen],
        names,
        target=label,
        seed=seed,
        settings=settings,
        sanity_images=sanity_images,
        sources=[im.path for im in chosen],
        progress=progress,
    )
    result.settings.update({"split": split, "threshold": threshold, "true_positives_with_boxes": len(chosen)})
    run.write_protected(EXPLAIN_EVAL, json_text(result.to_dict()).encode("utf-8"))
    return result
