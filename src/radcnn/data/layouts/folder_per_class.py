"""Folder per class — one folder of images per class, optionally inside official split folders.

Dataset card (the reference example: Kaggle "Chest X-Ray Images (Pneumonia)")
-------------------------------------------------------------------------------
Source:   Kermany, Zhang, Goldbaum, "Labeled Optical Coherence Tomography (OCT) and Chest X-Ray Images for
          Classification", Mendeley Data v2 (2018), doi:10.17632/rscbjbr9sj.2; repackaged on Kaggle as
          "Chest X-Ray Images (Pneumonia)" (paultimothymooney/chest-xray-pneumonia).
Size:     5,856 pediatric (age 1-5, Guangzhou Women and Children's Medical Center) anterior-posterior JPEGs:
          train 5,216 (1,341 NORMAL, 3,875 PNEUMONIA), val 16 (8 + 8), test 624 (234 + 390).
Labels:   folder name. With a "normal"-like class (normal, negative, healthy, no_finding) that class becomes the
          all-zero row and every other class one label column — the Kaggle tree gives one column, PNEUMONIA.
          Otherwise (``negative_class=None``) one column per class. The folder name is kept in ``class``.
Licence:  CC BY 4.0.
Citation: Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning",
          Cell 172(5):1122-1131 (2018).
Layout::

    chest_xray/                       <- pass this folder (any root/[split/]CLASS/*.image works)
      train/NORMAL/IM-0115-0001.jpeg
      train/PNEUMONIA/person1_bacteria_1.jpeg
      val/...  test/...
      chest_xray/train/...            <- the archive's nested duplicate copy: dropped by content hash, reported
      __MACOSX/...                    <- macOS resource forks: dropped, reported

Patient ids come from the file names: ``person1_bacteria_1`` and ``person1_virus_6`` → ``person1``;
``IM-0115-0001`` → ``IM-0115``; ``NORMAL2-IM-0123-0001`` → ``NORMAL2-IM-0123``. Names matching none of these (or
``patient_pattern``, a regex whose first group is the patient) count as their own patient. The official split
comes from the nearest ancestor folder named train/val/valid/validation/test. The official val split holds only
16 images; ``resplit_val=True`` folds it back into train and carves a new val (``val_fraction`` of the patients,
stratified, ``seed``) at patient level; the original stays in ``official_split``.

Identical files (SHA-256) are kept once: copies with the same class are dropped and reported ("duplicate copy"
when the relative path matches too, as in the nested archive copy); an identical image in two different class
folders is a labelling conflict and goes through ``on_error``.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import Problems, hash_files, is_image_file, walk_files
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
NEGATIVE_NAMES = {"normal", "negative", "healthy", "no_finding", "nofinding", "no finding", "no-finding"}
# Ordered: NORMAL2-IM-… must be tried before IM-… would match inside it (it cannot, anchored, but keep it explicit).
PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+", re.IGNORECASE),
    re.compile(r"^(NORMAL2-IM-\d+)-\d+", re.IGNORECASE),
    re.compile(r"^(IM-\d+)-\d+", re.IGNORECASE),
)
_SKIPPED_FOLDERS = {"__MACOSX"}


def patient_from_name(name: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """The patient id encoded in a file name, or None when no known pattern matches."""
    stem = name.split(".", 1)[0]
    for regex in (pattern,) if pattern is not None else PATIENT_PATTERNS:
        match = regex.match(stem)
        if match:
            return match.group(1)
    return None


def _detect(path: Path) -> bool:
    """A folder with images inside sub-folders (looks at the first few thousand files only)."""
    if not path.is_dir():
        return False
    for i, file in enumerate(walk_files(path)):
        if i > 5000:
            break
        if is_image_file(file) and file.parent != path and not _ignored(file.relative_to(path)):
            return True
    return False


def _ignored(rel: Path) -> bool:
    return any(part in _SKIPPED_FOLDERS for part in rel.parts) or rel.name.startswith(".")


@LAYOUTS.register(
    "folder_per_class",
    summary="root/[split/]CLASS/*.image trees, e.g. Kaggle Chest X-Ray Images (Pneumonia)",
    detect=_detect,
    priority=90,
)
def load_folder_per_class(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    negative_class: str | None = "auto",
    patient_pattern: str | None = None,
    dedupe: bool = True,
    workers: int | None = None,
    resplit_val: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Manifest:
    """Load a folder-per-class tree (see the module docstring). `check_files` is accepted for a uniform signature:
    every row comes from a file that was just found."""
    root = Path(source)
    if not root.is_dir():
        raise DataError(f"{root}: the folder_per_class layout needs a folder")
    problems = Problems(on_error)
    try:
        regex = re.compile(patient_pattern) if patient_pattern else None
    except re.error as exc:
        raise ConfigError(f"patient_pattern {patient_pattern!r} is not a regular expression: {exc}") from None
    if regex is not None and regex.groups < 1:
        raise ConfigError(f"patient_pattern {patient_pattern!r} needs a capture group for the patient id")

    rows = _collect(root.resolve(), problems)
    if not rows:
        raise DataError(f"{root}: no images found inside class folders")
    table = pd.DataFrame(rows)
    if dedupe:
        table = _drop_duplicates(table, root, problems, workers)

    classes = sorted(table["class"].unique())
    negative = _negative_class(classes, negative_class, root)
    label_names = tuple(c for c in classes if c != negative)
    if not label_names:
        raise DataError(f"{root}: only the negative class {negative!r} was found; nothing to classify")
    for name in label_names:
        table[name] = (table["class"] == name).astype(np.float32)

    patients = [patient_from_name(Path(p).name, regex) for p in table["path"]]
    unparsed = sum(p is None for p in patients)
    if unparsed:
        log.info("%s: %d file name(s) carry no patient id; each counts as its own patient", root, unparsed)
    table["patient_id"] = [
        p if p is not None else Path(path).name.split(".", 1)[0]
        for p, path in zip(patients, table["path"], strict=True)
    ]

    columns = ["path", "patient_id", *label_names, "class", "split", "sha256"]
    table = table[[c for c in columns if c in table.columns]].reset_index(drop=True)
    manifest = Manifest(table, label_names, root, problems.skipped)
    if resplit_val:
        manifest = _resplit_val(manifest, val_fraction=val_fraction, seed=seed)
    return manifest


def _collect(root: Path, problems: Problems) -> list[dict]:
    rows = []
    for path in walk_files(root):
        if not is_image_file(path):
            continue
        rel = path.relative_to(root)
        if any(part in _SKIPPED_FOLDERS for part in rel.parts):
            problems.note(str(path), "macOS archive metadata (__MACOSX): not part of the data set")
            continue
        if rel.name.startswith("."):
            problems.note(str(path), "hidden file (e.g. a macOS ._ resource fork): not an image")
            continue
        if len(rel.parts) < 2 or rel.parts[-2].lower() in SPLIT_FOLDERS:
            problems.report(path, "image is not inside a class folder (expected root/[split/]CLASS/image)")
            continue
        split = next((SPLIT_FOLDERS[p.lower()] for p in reversed(rel.parts[:-2]) if p.lower() in SPLIT_FOLDERS), "")
        rows.append({"path": str(path), "rel": rel, "class": rel.parts[-2], "split": split})
    return rows


def _drop_duplicates(table: pd.DataFrame, root: Path, problems: Problems, workers: int | None) -> pd.DataFrame:
    table["sha256"] = hash_files(list(table["path"]), workers=workers)
    drop: set[int] = set()
    groups: dict[str, list[int]] = defaultdict(list)
    for index, digest in zip(table.index, table["sha256"], strict=True):
        groups[digest].append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        # Keep the shallowest copy (the real tree, not the archive's nested copy), then the first by path.
        members = sorted(members, key=lambda i: (len(table.at[i, "rel"].parts), str(table.at[i, "rel"])))
        keeper = members[0]
        classes = {table.at[i, "class"] for i in members}
        if len(classes) > 1:
            listed = ", ".join(str(table.at[i, "path"]) for i in members)
            for i in members:
                problems.report(
                    table.at[i, "path"],
                    f"identical image in class folders {' and '.join(sorted(classes))}: conflicting labels ({listed})",
                )
            drop.update(members)
            continue
        keep_rel = table.at[keeper, "rel"].parts
        for i in members[1:]:
            rel = table.at[i, "rel"].parts
            same_place = rel[-len(keep_rel) :] == keep_rel
            kind = (
                "duplicate copy: identical content and relative path"
                if same_place
                else "duplicate image: identical content"
            )
            problems.note(str(table.at[i, "path"]), f"{kind} to {table.at[keeper, 'path']}; first kept")
            drop.add(i)
    if drop:
        log.info("%s: dropped %d duplicate file(s) found by content hash", root, len(drop))
    return table.drop(index=sorted(drop))


def _negative_class(classes: list[str], negative_class: str | None, root: Path) -> str | None:
    if negative_class is None or negative_class == "":
        return None
    if negative_class == "auto":
        negatives = [c for c in classes if c.lower() in NEGATIVE_NAMES]
        return negatives[0] if len(negatives) == 1 else None
    if negative_class not in classes:
        raise ConfigError(
            f"{root}: negative_class {negative_class!r} is not a class folder; found: {', '.join(classes)}"
        )
    return negative_class


def _resplit_val(manifest: Manifest, *, val_fraction: float, seed: int) -> Manifest:
    """Fold the official val split into train and carve a new, patient-level val out of the union."""
    from radcnn.data.splits import split_by_patient

    table = manifest.table.copy()
    if not (table["split"] == "train").any():
        raise ConfigError(f"{manifest.source}: resplit_val needs an official train split (train/ folder)")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    table["official_split"] = table["split"]
    pool = np.flatnonzero(table["split"].isin(["train", "val"]).to_numpy())
    carved = split_by_patient(manifest.select(pool), val_fraction=val_fraction, test_fraction=0.0, seed=seed)
    table.loc[pool, "split"] = carved
    log.info(
        "%s: official val (%d images) re-split: new val has %d images",
        manifest.source,
        int((table["official_split"] == "val").sum()),
        int((table["split"] == "val").sum()),
    )
    return Manifest(table, manifest.label_names, manifest.source, manifest.skipped)
