"""Writing explanations to disk: maps, overlays, a gallery and a summary, as one output folder.

    OUT/
      gallery.html                 all images, methods side by side, self-contained
      explanations.json            per image: source, target, probability, files, seconds, warnings
      <image stem>/input.png
      <image stem>/<method>.npy    the raw map, float32 (H, W) at the model's input resolution
      <image stem>/<method>.png    overlay: radiograph + map + colour bar, probability in the title

The folder is written under a temporary name and swapped into place when complete, so a re-run never leaves maps
of an earlier run beside the new ones, and an interrupted run leaves the previous output untouched. A folder that
radcnn explain did not write is only replaced with ``overwrite``. With a key (a run trained on encrypted data),
every file showing the patient's image is written encrypted as ``<name>.rcenc``.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radcnn.encryption.files import write_protected
from radcnn.explain.gallery import GalleryRow, render_gallery
from radcnn.explain.overlay import map_peak, render_image, render_overlay, shared_limits
from radcnn.io import json_text
from radcnn.outputs import claim, mark, replace_directory

if TYPE_CHECKING:
    from radcnn.explain.run import ImageExplanation

GALLERY = "gallery.html"
SUMMARY = "explanations.json"


@dataclass(frozen=True)
class ExplainOutput:
    out_dir: Path
    gallery: Path
    summary: Path
    files: dict[str, dict[str, dict[str, Path]]]  # image folder → method → {"npy", "png"}


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


def overlay_title(method: str, item: ImageExplanation, threshold: float | None = None) -> str:
    return f"{method} — {item.target} p = {item.probability:.3f}{decision_text(item.probability, threshold)}"


def decision_text(probability: float, threshold: float | None) -> str:
    """ ", ≥ 0.412 → positive" (the decision at the run's threshold), or "" without a threshold."""
    if threshold is None:
        return ""
    if probability >= threshold:
        return f" ≥ {threshold:.4g} → positive"
    return f" < {threshold:.4g} → negative"


def write_explanations(
    explanations: Sequence[ImageExplanation],
    out_dir: str | Path,
    *,
    title: str = "radcnn explanations",
    notes: Sequence[dict[str, str]] | None = None,
    boxes: Sequence[Sequence[tuple[float, float, float, float]]] | None = None,
    key=None,
    overwrite: bool = False,
    thresholds: dict[str, float] | None = None,
) -> ExplainOutput:
    """Write every map (.npy), overlay (.png), the gallery and a JSON summary as the folder `out_dir` (see the
    module docstring). `notes` (per image: {method or "input": caption}) and ground-truth `boxes` (per image, input
    pixels) are optional extras for the gallery. `thresholds` (label → the model's decision threshold) puts the
    threshold and the decision beside every image. Each method's overlays share one colour scale across the
    images, and each map's peak |attribution| is printed under it."""
    out_dir = Path(out_dir)
    claim(out_dir, "explain", overwrite=overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        output = _write_into(work, explanations, title, notes, boxes, key, thresholds or {})
        mark(work, "explain")
        replace_directory(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = {
        folder: {m: {k: out_dir / v.relative_to(work) for k, v in f.items()} for m, f in entry.items()}
        for folder, entry in output.files.items()
    }
    return ExplainOutput(
        out_dir, out_dir / output.gallery.relative_to(work), out_dir / output.summary.relative_to(work), files
    )


def _write_into(work: Path, explanations, title, notes, boxes, key, thresholds) -> ExplainOutput:
    out_dir = work
    methods = list(dict.fromkeys(m for item in explanations for m in item.maps))
    limits = {m: shared_limits([item.maps[m] for item in explanations if m in item.maps]) for m in methods}
    files: dict[str, dict[str, dict[str, Path]]] = {}
    rows, summary = [], []
    for i, (folder, item) in enumerate(zip(_folder_names(explanations), explanations, strict=True)):
        target_dir = out_dir / folder
        threshold = thresholds.get(item.target)
        decision = decision_text(item.probability, threshold)
        input_png = render_image(
            item.image, title=f"{item.target} p = {item.probability:.3f}{decision}", boxes=boxes[i] if boxes else ()
        )
        row_notes = dict(notes[i]) if notes else {}
        target_dir.mkdir(parents=True, exist_ok=True)
        write_protected(target_dir / "input.png", input_png, key)
        overlays, entry = {}, {}
        for method, attribution in item.maps.items():
            buffer = io.BytesIO()
            np.save(buffer, attribution.astype(np.float32))
            npy = write_protected(target_dir / f"{method}.npy", buffer.getvalue(), key)
            overlays[method] = render_overlay(
                item.image, attribution, title=overlay_title(method, item, threshold), limits=limits[method]
            )
            vmin, vmax, _ = limits[method]
            peak = f"peak |map| {map_peak(attribution):.3g} (shared scale {vmin:.3g} to {vmax:.3g}: 99.5th pct of all maps)"
            row_notes[method] = f"{row_notes[method]}; {peak}" if method in row_notes else peak
            png = write_protected(target_dir / f"{method}.png", overlays[method], key)
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
                notes=row_notes,
                threshold=threshold,
            )
        )
        summary.append(
            {
                "source": item.source,
                "folder": folder,
                "target": item.target,
                "probability": item.probability,
                "threshold": threshold,
                "decision": None
                if threshold is None
                else ("positive" if item.probability >= threshold else "negative"),
                "map_peaks": {m: map_peak(a) for m, a in item.maps.items()},
                "seconds": item.seconds,
                "warnings": list(item.warnings),
                "files": {m: {k: str(v.relative_to(out_dir)) for k, v in f.items()} for m, f in entry.items()},
            }
        )
    gallery = write_protected(out_dir / GALLERY, render_gallery(rows, methods, title=title).encode("utf-8"), key)
    scales = {m: {"vmin": lo, "vmax": hi, "signed": signed} for m, (lo, hi, signed) in limits.items()}
    summary_json = json_text({"methods": methods, "colour_scales": scales, "images": summary})
    summary_path = write_protected(out_dir / SUMMARY, summary_json.encode("utf-8"), key)
    return ExplainOutput(out_dir, gallery, summary_path, files)
