"""A training run's own images for explanation: its split, the lesion boxes of each image, the report gallery.

The split comes from the run's `split.csv` (never recomputed; decrypted in memory for a run on encrypted data),
the images go through the one input path as in `radcnn predict`, and the ground-truth boxes come from the run's labels CSV — the synthetic phantoms' ``boxes``
column — or from an NIH ``BBox_List_2017.csv`` given explicitly (matched by file name). Boxes are in
stored-image pixels and are scaled to the model's input size (`preprocess` stretches, so the scaling is linear).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.csv_manifest import find_labels_csv
from radcnn.errors import DataError, ImageReadError, UnknownNameError
from radcnn.explain.localisation import Box, parse_boxes, read_nih_bboxes
from radcnn.explain.output import write_explanations
from radcnn.runs import RunDir

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
GALLERY_METHODS = ("gradcam", "integrated_gradients", "occlusion", "lime", "kernel_shap")


@dataclass(frozen=True)
class RunImage:
    path: str
    array: np.ndarray  # (C, H, W) float32 model input
    truth: float  # the target label (NaN = unknown)
    boxes: tuple[Box, ...]  # the target label's lesions, in model-input pixels


def target_label(spec, target: str | None) -> str:
    """The label to explain and score: the given name, else the run's first label."""
    if target is None:
        return spec.label_names[0]
    if target not in spec.label_names:
        raise UnknownNameError("target label", target, list(spec.label_names))
    return target


def boxes_by_path(source: str | Path, *, boxes_csv: str | Path | None = None) -> dict[str, list[Box]]:
    """{resolved image path or file name: boxes in stored pixels} from the labels CSV or an NIH box list."""
    if boxes_csv is not None:
        return {name: boxes for name, boxes in read_nih_bboxes(boxes_csv).items()}
    # A run's data.source may be the folder that holds the labels CSV (`radcnn train --data data/phantom`).
    source = (find_labels_csv(source) or Path(source)) if Path(source).is_dir() else Path(source)
    if source.suffix.lower() != ".csv" or not source.is_file():
        return {}
    table = pd.read_csv(source, dtype=str, keep_default_na=False)
    if "boxes" not in table.columns or "path" not in table.columns:
        return {}
    found = {}
    for i, (path, text) in enumerate(zip(table["path"], table["boxes"], strict=True)):
        resolved = str((source.parent / path).resolve()) if not Path(path).is_absolute() else path
        found[resolved] = parse_boxes(text, path=source, row=i + 2)
    return found


def _lookup(boxes: dict[str, list[Box]], path: str) -> list[Box]:
    return boxes.get(str(Path(path).resolve()), boxes.get(path, boxes.get(Path(path).name, [])))


def read_run_images(
    rows: pd.DataFrame, spec, label: str, boxes: dict[str, list[Box]], *, on_error: str = "skip", key=None
) -> list[RunImage]:
    """Read and resize `rows`' images; each with its truth for `label` and its `label` boxes at input size."""
    from radcnn.data.readers.dispatch import read_image
    from radcnn.data.transforms import preprocess

    size = (int(spec.input_size[0]), int(spec.input_size[1]))
    images = []
    for _, row in rows.iterrows():
        path = str(row["path"])
        try:
            image, _meta = read_image(path, window=spec.window, target_size=size)
        except ImageReadError as exc:
            if on_error == "fail":
                raise
            log.warning("skipped %s: %s", path, exc.reason)
            continue
        own = [b for b in _lookup(boxes, path) if not b.label or b.label.lower() == label.lower()]
        scaled = tuple(b.scaled(image.shape, size) for b in own)
        truth = float(row[label]) if label in row and pd.notna(row[label]) else float("nan")
        images.append(RunImage(path, preprocess(image, size), truth, scaled))
    return images


def explain_run_gallery(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    n_images: int = 4,
    methods: str | Sequence[str] = GALLERY_METHODS,
    split: str = "test",
    target: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    overwrite: bool = False,
):
    """Explain a few of a run's `split` images (half positives, half negatives, drawn with `seed`) into `out_dir`.

    The evaluation report calls this for its gallery; returns the `ExplainOutput` (gallery.html path and files).
    """
    from radcnn.explain.run import explain_images

    run = RunDir.open(run_dir)
    (model, spec), config = run.load_model(), run.config()
    label = target_label(spec, target)
    rows = run.split_rows(split)
    rng = np.random.default_rng(seed)
    positive = rows.index[rows[label] == 1].to_numpy() if label in rows else np.array([], int)
    negative = np.setdiff1d(rows.index.to_numpy(), positive)
    n_pos = min(len(positive), (n_images + 1) // 2)
    picked = list(rng.permutation(positive)[:n_pos]) + list(rng.permutation(negative)[: n_images - n_pos])
    if not picked:
        raise DataError(f"{run.path}: the {split} split has no images to explain")
    chosen = rows.loc[sorted(picked)]
    images = read_run_images(chosen, spec, label, boxes_by_path(config.data.source), key=run.key)
    explanations = explain_images(
        model, spec, [im.array for im in images], methods, target=label, seed=seed, progress=progress
    )
    for explanation, image in zip(explanations, images, strict=True):
        explanation.source = image.path
    truth = [{"input": f"truth: {label} = {im.truth:g}, {len(im.boxes)} box(es)"} for im in images]
    return write_explanations(
        explanations,
        out_dir,
        key=run.write_key,
        overwrite=overwrite,
        title=f"{run.path.name}: {label} explanations ({split} split)",
        notes=truth,
        boxes=[[(b.x0, b.y0, b.x1, b.y1) for b in im.boxes] for im in images],
        thresholds=model_thresholds(spec),
    )


def model_thresholds(spec) -> dict[str, float]:
    """label → the model's decision threshold (chosen on val); none for a multi-class model (arg-max decides)."""
    if spec.task == "multiclass":
        return {}
    return {name: float(t) for name, t in zip(spec.label_names, spec.thresholds, strict=True)}
