"""The batched driver: many images × many methods → maps, overlays, a gallery.

`explain_images` is the Python API: model + spec + images (files or arrays) → one `ImageExplanation` per image.
`write_explanations` lays the results out on disk::

    OUT/
      gallery.html                 all images, methods side by side, self-contained
      explanations.json            per image: source, target, probability, files, seconds, warnings
      <image stem>/input.png
      <image stem>/<method>.npy    the raw map, float32 (H, W) at the model's input resolution
      <image stem>/<method>.png    overlay: radiograph + map + colour bar, probability in the title

Determinism: each image gets its own seed drawn from `seed` (numpy SeedSequence), and every random draw happens
under that seed inside a forked torch RNG, so the same images, methods and seed give the same maps.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radcnn.explain.inputs import ImageLike, prepare_images
from radcnn.explain.registry import ExplainSettings, get_explainer, parse_methods, require_captum
from radcnn.explain.targets import ScoredModel, resolve_targets
from radcnn.io import atomic_path, write_json_atomic
from radcnn.models.spec import ModelSpec

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


@dataclass(frozen=True)
class ExplainOutput:
    out_dir: Path
    gallery: Path
    summary: Path
    files: dict[str, dict[str, dict[str, Path]]]  # image folder → method → {"npy", "png"}


def image_seeds(seed: int, n: int) -> list[int]:
    """Independent per-image seeds derived from one seed."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n, dtype=np.uint32)]


def explain_images(
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
) -> list[ImageExplanation]:
    """Explain each image with each method; `target` is a label name (default: the single label, or the top one).

    Images may be files (read as `radcnn predict` reads them) or arrays of any size and range (resized and
    normalised per the ModelSpec, with warnings). `progress(done, total)` counts image × method units.
    """
    explanations, _ = explain_images_with_skips(
        model, spec, images, methods, target=target, seed=seed, progress=progress, settings=settings, on_error=on_error
    )
    return explanations


def explain_images_with_skips(
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
) -> tuple[list[ImageExplanation], list[tuple[str, str]]]:
    """`explain_images`, also returning the (path, reason) of files skipped under `on_error="skip"`."""
    require_captum()
    names = parse_methods(methods)
    settings = settings or ExplainSettings()
    scored = ScoredModel(model, spec)
    prepared, skipped = prepare_images(images, spec, scored.model, on_error=on_error)
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


def _folder_names(explanations: Sequence[ImageExplanation]) -> list[str]:
    """A safe, unique folder name per image (file stem; repeated stems get a numeric suffix)."""
    seen: dict[str, int] = {}
    names = []
    for item in explanations:
        stem = Path(item.source).name
        for suffix in (".gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "image"
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(stem if count == 0 else f"{stem}_{count + 1}")
    return names


def overlay_title(method: str, item: ImageExplanation) -> str:
    return f"{method} — {item.target} p = {item.probability:.3f}"


def write_explanations(
    explanations: Sequence[ImageExplanation],
    out_dir: str | Path,
    *,
    title: str = "radcnn explanations",
    notes: Sequence[dict[str, str]] | None = None,
    boxes: Sequence[Sequence[tuple[float, float, float, float]]] | None = None,
) -> ExplainOutput:
    """Write every map (.npy), overlay (.png), the gallery and a JSON summary under `out_dir`; each file atomically.

    `notes` (per image: {method or "input": caption}) and ground-truth `boxes` (per image, input pixels) are
    optional extras for the gallery.
    """
    from radcnn.explain.gallery import GalleryRow, write_gallery
    from radcnn.explain.overlay import render_image, render_overlay, write_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = list(dict.fromkeys(m for item in explanations for m in item.maps))
    files: dict[str, dict[str, dict[str, Path]]] = {}
    rows, summary = [], []
    for i, (folder, item) in enumerate(zip(_folder_names(explanations), explanations, strict=True)):
        target_dir = out_dir / folder
        input_png = render_image(
            item.image, title=f"{item.target} p = {item.probability:.3f}", boxes=boxes[i] if boxes else ()
        )
        write_png(input_png, target_dir / "input.png")
        overlays, entry = {}, {}
        for method, attribution in item.maps.items():
            npy = target_dir / f"{method}.npy"
            with atomic_path(npy) as tmp, open(tmp, "wb") as handle:
                np.save(handle, attribution.astype(np.float32))
            overlays[method] = render_overlay(item.image, attribution, title=overlay_title(method, item))
            png = write_png(overlays[method], target_dir / f"{method}.png")
            entry[method] = {"npy": npy, "png": png}
        files[folder] = entry
        rows.append(
            GalleryRow(
                # Parent folder too: exports often name every study "study01.dcm" inside a per-patient folder.
                name="/".join(Path(item.source).parts[-2:]),
                target=item.target,
                probability=item.probability,
                input_png=input_png,
                overlays=overlays,
                warnings=item.warnings,
                notes=notes[i] if notes else {},
            )
        )
        summary.append(
            {
                "source": item.source,
                "folder": folder,
                "target": item.target,
                "probability": item.probability,
                "seconds": item.seconds,
                "warnings": list(item.warnings),
                "files": {m: {k: str(v.relative_to(out_dir)) for k, v in f.items()} for m, f in entry.items()},
            }
        )
    gallery = write_gallery(rows, methods, out_dir / "gallery.html", title=title)
    summary_path = write_json_atomic(out_dir / "explanations.json", {"methods": methods, "images": summary})
    return ExplainOutput(out_dir, gallery, summary_path, files)


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
) -> ExplainFilesResult:
    """`radcnn explain`: a run directory (its best model) or a model file + image files → files under `out_dir`."""
    from radcnn.serve.predictor import Predictor

    predictor = Predictor.from_path(model_path)
    explanations, skipped = explain_images_with_skips(
        predictor.model,
        predictor.spec,
        [Path(p) for p in images],
        methods,
        target=target,
        seed=seed,
        progress=progress,
        settings=settings,
        on_error=on_error,
    )
    title = f"{Path(model_path).name}: {predictor.spec.architecture} explanations"
    return ExplainFilesResult(explanations, write_explanations(explanations, out_dir, title=title), skipped)
