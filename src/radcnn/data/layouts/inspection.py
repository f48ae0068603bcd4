"""`inspect_dataset`: what a folder or file holds — layout, counts per split and class, patients, image sizes,
problems — as plain data for the CLI (``radcnn data inspect``) or a notebook to render.

Inspection collects problems instead of stopping at the first (the loader runs with ``on_error="skip"`` by
default), reads a random sample of images with :func:`radcnn.data.readers.dispatch.read_image` to report their sizes and any
decode failure, and checks the official split for patients that appear in more than one partition.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import summarize_skipped
from radcnn.data.layouts.registry import detect_layout, load_layout
from radcnn.data.manifest import Manifest
from radcnn.errors import ImageReadError

log = logging.getLogger(__name__)


@dataclass
class DatasetReport:
    layout: str
    source: Path
    manifest: Manifest
    counts: pd.DataFrame  # one row per split (and "all"): images, patients, per label positives (and unknown)
    image_sizes: Counter  # (H, W) → how many sampled images had it
    sampled: int
    read_failures: list[tuple[str, str]]  # (path, reason) among the sampled images
    problems: list[tuple[str, str]] = field(default_factory=list)  # Manifest.skipped plus split problems
    # What the headers say (a DICOM folder): distinct studies/series, and counts per modality, view, body part,
    # image size and transfer syntax — only for the columns the layout recorded.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def problem_summary(self) -> dict[str, int]:
        return summarize_skipped([*self.problems, *self.read_failures])


def inspect_dataset(
    path: str | Path,
    *,
    layout: str = "auto",
    sample: int = 16,
    seed: int = 0,
    on_error: str = "skip",
    **options: Any,
) -> DatasetReport:
    """Load `path` with `layout` ("auto" detects it) and summarise it (see the module docstring)."""
    path = Path(path).expanduser()
    name = detect_layout(path) if layout == "auto" else layout
    manifest = load_layout(name, path, on_error=on_error, **options)
    problems = list(manifest.skipped) + _split_problems(manifest)
    sizes, failures, sampled = _sample_sizes(manifest, sample, seed)
    return DatasetReport(
        layout=name,
        source=path,
        manifest=manifest,
        counts=count_table(manifest),
        image_sizes=sizes,
        sampled=sampled,
        read_failures=failures,
        problems=problems,
        details=header_details(manifest.table),
    )


DETAIL_COLUMNS = ("modality", "view", "body_part", "size", "transfer_syntax")


def header_details(table: pd.DataFrame) -> dict[str, Any]:
    """Distinct studies and series, and value counts of the header columns a layout recorded."""
    details: dict[str, Any] = {}
    for column, name in (("study", "studies"), ("series", "series")):
        if column in table.columns:
            details[name] = int(table[column].replace("", np.nan).nunique())
    for column in DETAIL_COLUMNS:
        if column in table.columns:
            values = table[column].astype(str).replace("", "(blank)")
            details[column] = dict(Counter(values).most_common())
    return details


def count_table(manifest: Manifest) -> pd.DataFrame:
    """Images, patients and, per label, positives (and unknowns when any) for each split and overall."""
    table = manifest.table
    splits = table["split"].astype(str) if "split" in table.columns else pd.Series([""] * len(table))
    labels = manifest.labels()
    groups = [(s or "(none)", (splits == s).to_numpy()) for s in sorted(splits.unique(), key=_split_order)]
    if len(groups) > 1:
        groups.append(("all", np.ones(len(table), dtype=bool)))
    rows = []
    for name, mask in groups:
        row: dict[str, Any] = {
            "split": name,
            "images": int(mask.sum()),
            "patients": int(table.loc[mask, "patient_id"].nunique()),
        }
        for j, label in enumerate(manifest.label_names):
            row[label] = int((labels[mask, j] > 0.5).sum())
            unknown = int(np.isnan(labels[mask, j]).sum())
            if np.isnan(labels[:, j]).any():
                row[f"{label} unknown"] = unknown
        rows.append(row)
    return pd.DataFrame(rows)


def _split_order(name: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return (order.get(name, 3), name)


def _split_problems(manifest: Manifest) -> list[tuple[str, str]]:
    """Patients whose images sit in more than one official split (a leak in the published split itself)."""
    table = manifest.table
    if "split" not in table.columns:
        return []
    labelled = table[table["split"].astype(str) != ""]
    spread = labelled.groupby("patient_id")["split"].nunique()
    offenders = sorted(spread.index[spread > 1].astype(str))
    if not offenders:
        return []
    listed = ", ".join(offenders[:10]) + (f" and {len(offenders) - 10} more" if len(offenders) > 10 else "")
    return [(f"{manifest.source} official split", f"patients in more than one split: {len(offenders)} ({listed})")]


def _sample_sizes(manifest: Manifest, sample: int, seed: int) -> tuple[Counter, list[tuple[str, str]], int]:
    paths = list(manifest.table["path"].astype(str))
    if sample <= 0 or not paths:
        return Counter(), [], 0
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(paths), size=min(sample, len(paths)), replace=False).tolist())
    sizes: Counter = Counter()
    failures: list[tuple[str, str]] = []
    pseudo = [paths[i] for i in picked if ".npz:" in paths[i]]
    if pseudo:
        sizes.update(_pseudo_sizes(pseudo))
    from radcnn.data.readers.dispatch import read_image

    for i in picked:
        if ".npz:" in paths[i]:
            continue
        try:
            image, _ = read_image(paths[i])
        except ImageReadError as exc:
            failures.append((paths[i], f"unreadable image: {exc.reason}"))
            continue
        sizes[tuple(int(s) for s in image.shape)] += 1
    return sizes, failures, len(picked)


def _pseudo_sizes(paths: list[str]) -> Counter:
    """Image sizes of MedMNIST rows, from the array headers (no pixels are decoded)."""
    from radcnn.data.layouts.medmnist import npz_headers, parse_pseudo_path

    sizes: Counter = Counter()
    headers: dict[Path, dict] = {}
    for text in paths:
        npz, split, _ = parse_pseudo_path(text)
        if npz not in headers:
            headers[npz] = npz_headers(npz)
        shape = headers[npz].get(f"{split}_images", ((0, 0, 0), None))[0]
        sizes[tuple(int(s) for s in shape[1:3])] += 1
    return sizes
