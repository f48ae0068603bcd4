"""The batched driver: many images × many methods → maps, then (`explain_files`) files on disk.

`explain_images` is the Python API: model + spec + images (files or arrays) → one `ImageExplanation` per image;
`radcnn.explain.output.write_explanations` lays them out on disk (gallery, maps, overlays).

Determinism: each image gets its own seed drawn from `seed` (numpy SeedSequence), and every random draw happens
under that seed inside a forked torch RNG, so the same images, methods and seed give the same maps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radcnn.explain.inputs import ImageLike, prepare_images
from radcnn.explain.output import ExplainOutput, write_explanations
from radcnn.explain.registry import (
    ExplainSettings,
    ExplanationError,
    explainer_infos,
    get_explainer,
    parse_methods,
    require_captum,
)
from radcnn.explain.targets import ScoredModel, resolve_targets
from radcnn.models.checkpoint import load_model
from radcnn.models.spec import ModelSpec
from radcnn.runs import RunDir

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# Gradient methods share one backward pass per batch; perturbation methods go image by image anyway.
GRADIENT_BATCH = 16


@dataclass
class ImageExplanation:
    """Every requested method's map for one image, with what was explained and how long it took."""

    source: str
    image: np.ndarray  # (H, W) the model input the maps refer to
    target: str
    target_index: int
    probability: float  # predicted probability of the target label
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # method → (H, W) float32
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def image_seeds(seed: int, n: int) -> list[int]:
    """Independent per-image seeds derived from one seed."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n, dtype=np.uint32)]


def check_gradients(model: nn.Module, names: Sequence[str]) -> None:
    """A model without trainable parameters (the classic HOG/LBP baselines) has no gradients to explain with."""
    if any(p.requires_grad for p in model.parameters()):
        return
    infos = {i.name: i for i in explainer_infos()}
    refused = [n for n in names if infos[n].extra.get("needs_grad")]
    if refused:
        usable = [i.name for i in infos.values() if not i.extra.get("needs_grad")]
        raise ExplanationError(
            f"{getattr(model, 'family', type(model).__name__)} has no gradients, so {', '.join(refused)} do not apply; methods that do: "
            f"{', '.join(usable)}"
        )


def explain_images(model: nn.Module, spec: ModelSpec, images, methods, **options) -> list[ImageExplanation]:
    """Explain each image with each method (the explanations of `explain_batch`; same options)."""
    return explain_batch(model, spec, images, methods, **options)[0]


def explain_batch(
    model: nn.Module,
    spec: ModelSpec,
    images: ImageLike | Sequence[ImageLike],
    methods: str | Sequence[str],
    *,
    target: str | int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    settings: ExplainSettings | None = None,
    on_error: str = "fail",
    key=None,
) -> tuple[list[ImageExplanation], list[tuple[str, str]]]:
    """Explain each image with each method → (explanations, skipped files as (path, reason) under on_error="skip").

    `target` is a label name (default: the single label, or the top one). Images may be files (read through the
    one input path, decrypted with `key` when encrypted at rest) or arrays of any size and range (resized and
    normalised per the ModelSpec, with warnings). `progress(done, total)` counts image × method units.
    """
    require_captum()
    names = parse_methods(methods)
    check_gradients(model, names)
    settings = settings or ExplainSettings()
    scored = ScoredModel(model, spec)
    prepared, skipped = prepare_images(images, spec, on_error=on_error, key=key)
    batch = np.stack([p.array for p in prepared])
    probabilities = scored.predict(batch)
    targets = resolve_targets(spec, target, probabilities)
    results = [
        ImageExplanation(
            source=p.source,
            image=p.array[0],
            target=spec.label_names[int(t)],
            target_index=int(t),
            probability=float(probabilities[i, int(t)]),
            warnings=p.warnings,
        )
        for i, (p, t) in enumerate(zip(prepared, targets, strict=True))
    ]
    tensor = torch.from_numpy(batch)
    target_tensor = torch.from_numpy(targets)
    seeds = image_seeds(seed, len(results))
    total, done = len(results) * len(names), 0
    for name in names:
        entry = get_explainer(name)
        step = GRADIENT_BATCH if entry.info.extra.get("output") == "logit" else 1
        for start in range(0, len(results), step):
            stop = min(start + step, len(results))
            began = time.perf_counter()
            maps = entry.builder(scored, tensor[start:stop], target_tensor[start:stop], settings, seeds[start:stop])
            per_image = (time.perf_counter() - began) / (stop - start)
            for k, result in enumerate(results[start:stop]):
                result.maps[name] = np.asarray(maps[k], dtype=np.float32)
                result.seconds[name] = per_image
            done += stop - start
            if progress is not None:
                progress(done, total)
        log.debug("%s: %.3f s per image", name, np.mean([r.seconds[name] for r in results]))
    return results, skipped


@dataclass(frozen=True)
class ExplainFilesResult:
    explanations: list[ImageExplanation]
    output: ExplainOutput
    skipped: list[tuple[str, str]]  # (path, reason) of unreadable files under on_error="skip"


def explain_files(
    model_path: str | Path,
    images: Sequence[str | Path],
    methods: str | Sequence[str],
    out_dir: str | Path,
    *,
    target: str | None = None,
    seed: int = 0,
    settings: ExplainSettings | None = None,
    progress: Progress | None = None,
    on_error: str = "fail",
    key=None,
    overwrite: bool = False,
) -> ExplainFilesResult:
    """`radcnn explain`: a run directory (its best model) or a model file + image files → files under `out_dir`.

    For a run trained on encrypted data (or with `key`), images are read decrypted in memory and every output file
    (maps, overlays, the gallery) is written encrypted; `out_dir` is replaced only if an earlier `radcnn explain`
    wrote it, or with `overwrite`."""
    model_path = Path(model_path)
    if model_path.is_dir():
        run = RunDir(model_path, key=key)
        (model, spec), write_key = run.load_model(), run.write_key
    else:
        (model, spec), write_key = load_model(model_path, key=key), key
    explanations, skipped = explain_batch(
        model,
        spec,
        [Path(p) for p in images],
        methods,
        target=target,
        seed=seed,
        progress=progress,
        settings=settings,
        on_error=on_error,
        key=key if key is not None else write_key,
    )
    title = f"{model_path.name}: {spec.architecture} explanations"
    thresholds = (
        {} if spec.task == "multiclass" else dict(zip(spec.label_names, map(float, spec.thresholds), strict=True))
    )
    output = write_explanations(
        explanations, out_dir, title=title, key=write_key, overwrite=overwrite, thresholds=thresholds
    )
    return ExplainFilesResult(explanations, output, skipped)
