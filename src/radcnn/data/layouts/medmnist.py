"""MedMNIST — standardised small biomedical images in one .npz per data set, with the official splits.

Dataset card
------------
Source:   https://medmnist.com, files on Zenodo (record 10519652: every 2-D set at 28, 64, 128 and 224 px);
          ``radcnn data download NAME --size S`` fetches one and checks its MD5.
Size:     12 2-D sets, e.g. PneumoniaMNIST 5,856 images (train 4,708 / val 524 / test 624), ChestMNIST 112,120
          (78,468 / 11,219 / 22,433); see ``MEDMNIST_2D`` for the others.
Labels:   binary sets (PneumoniaMNIST, BreastMNIST) → one column named after class 1 ("pneumonia");
          ChestMNIST → 14 columns (multi-label, from NIH ChestX-ray14); multi-class and ordinal sets → one-hot
          columns named after the classes (trained as one softmax). A file radcnn does not know gets ``label``
          (``label`` holding class indices when its values go beyond 0/1) or ``label_0…`` for several columns.
Licence:  CC BY 4.0 (DermaMNIST: CC BY-NC 4.0).
Citation: Yang et al., "MedMNIST v2 — A large-scale lightweight benchmark for 2D and 3D biomedical image
          classification", Scientific Data 10, 41 (2023).
Layout::

    pneumoniamnist.npz          train_images (N,H,W[,3]) uint8, train_labels (N,C), val_*, test_*
    chestmnist_224.npz          the size suffix is optional; the data set is named by the file name or ``dataset``

Rows carry pseudo-paths ``/abs/file.npz:split[i]`` (see :func:`parse_pseudo_path`); MedMNIST publishes no patient
ids, so each image is its own patient (``file:split[i]``). ChestMNIST keeps NIH's patient-level official split.
Bad label values (outside 0/1, or a class index out of range) go through ``on_error`` naming the row.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from radcnn.data.layouts.common import Problems
from radcnn.data.layouts.medmnist_download import MEDMNIST_2D, MedMNISTInfo
from radcnn.data.layouts.registry import LAYOUTS
from radcnn.data.manifest import Manifest
from radcnn.errors import DataError, ManifestError

log = logging.getLogger(__name__)

_PSEUDO = re.compile(r"^(?P<file>.+\.npz):(?P<split>[a-z]+)\[(?P<index>\d+)\]$")
_NAME = re.compile(r"^(?P<name>[a-z]+mnist)(?:_(?P<size>\d+))?", re.IGNORECASE)
_SPLITS = ("train", "val", "test")


def _detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npz"


def pseudo_path(npz: Path, split: str, index: int) -> str:
    return f"{npz}:{split}[{index}]"


def parse_pseudo_path(text: str) -> tuple[Path, str, int]:
    """``/data/x.npz:train[3]`` → (Path("/data/x.npz"), "train", 3)."""
    match = _PSEUDO.match(str(text))
    if match is None:
        raise ManifestError(None, f"not a MedMNIST pseudo-path (file.npz:split[i]): {text!r}")
    return Path(match["file"]), match["split"], int(match["index"])


def dataset_name(path: Path) -> str | None:
    """``pneumoniamnist_224.npz`` → "pneumoniamnist" when radcnn knows the set, else None."""
    match = _NAME.match(path.name)
    name = match["name"].lower() if match else None
    return name if name in MEDMNIST_2D else None


@LAYOUTS.register(
    "medmnist",
    summary="MedMNIST .npz (12 2-D sets, 28/64/128/224 px, ChestMNIST multi-label)",
    detect=_detect,
    priority=40,
)
def load_medmnist_layout(
    source: str | Path,
    *,
    on_error: str = "fail",
    check_files: bool = True,
    dataset: str | None = None,
) -> Manifest:
    """Manifest rows for every image of a MedMNIST file (see the module docstring). `check_files` is accepted for
    a uniform signature: the file itself is read.

    Only the label arrays are loaded, and the image arrays' headers checked (count, 2-D shape): decoding a whole
    ChestMNIST-224 into float32 (about 22 GB) just to list its rows would not fit in memory. The images are read by
    :func:`radcnn.data.layouts.medmnist_arrays.load_medmnist` when the data are prepared for training.
    """
    npz = Path(source).resolve()
    name = dataset or dataset_name(npz)
    info = MEDMNIST_2D.get(name) if name else None
    if dataset and info is None:
        raise DataError(f"unknown MedMNIST data set {dataset!r}; known: {', '.join(sorted(MEDMNIST_2D))}")
    headers = npz_headers(npz)
    problems = Problems(on_error)
    tables = []
    label_names: tuple[str, ...] | None = None
    with np.load(npz, allow_pickle=False) as archive:
        for split in _SPLITS:
            if f"{split}_labels" not in headers and f"{split}_images" not in headers:
                continue
            labels = _split_labels(npz, archive, headers, split)
            names, values, good = _convert(labels, info, npz, split, problems)
            if label_names is not None and names != label_names:
                raise ManifestError(npz, f"the {split} labels have columns {names}, other splits {label_names}")
            label_names = names
            rows = np.flatnonzero(good)
            table = pd.DataFrame({"path": [pseudo_path(npz, split, int(i)) for i in rows]})
            table["patient_id"] = [f"{npz.stem}:{split}[{i}]" for i in rows]
            for j, column in enumerate(names):
                table[column] = values[rows, j]
            table["split"] = split
            tables.append(table)
    if not tables or label_names is None:
        raise DataError(f"{npz}: no train/val/test arrays found (keys: {', '.join(sorted(headers)) or 'none'})")
    table = pd.concat(tables, ignore_index=True)
    table["dataset"] = name or npz.stem
    if info is None:
        log.info("%s: not a MedMNIST file radcnn knows by name; labels named %s", npz, ", ".join(label_names))
    return Manifest(table, label_names, npz, problems.skipped)


def npz_headers(npz: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Array name → (shape, dtype) for every array in an .npz, read from the headers without loading the data."""
    if not npz.is_file():
        raise DataError(f"{npz}: no such MedMNIST .npz file")
    headers = {}
    try:
        with zipfile.ZipFile(npz) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                headers[member[: -len(".npy")]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{npz}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    return headers


def _split_labels(npz: Path, archive, headers: dict, split: str) -> np.ndarray:
    image_key, label_key = f"{split}_images", f"{split}_labels"
    for key in (image_key, label_key):
        if key not in headers:
            raise DataError(f"{npz}: key {key!r} is missing although the other array of the {split} split is present")
    shape = headers[image_key][0]
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (3, 4)):
        raise DataError(f"{npz}: {image_key} has shape {shape}; expected 2-D images (N, H, W) or (N, H, W, 3)")
    labels = np.asarray(archive[label_key])
    labels = labels.reshape(len(labels), -1)
    if len(labels) != shape[0]:
        raise DataError(f"{npz}: {image_key} has {shape[0]} images but {label_key} has {len(labels)} rows")
    return labels


def _convert(labels: np.ndarray, info: MedMNISTInfo | None, npz: Path, split: str, problems: Problems):
    """(label names, N×C float32 values, rows that are valid) for one split, by the data set's task."""
    n, c = labels.shape
    good = np.ones(n, dtype=bool)
    integral = labels.size > 0 and bool(np.all(labels == np.round(labels)))
    if info is None and c == 1 and integral and labels.min() >= 0 and labels.max() > 1:
        # A file radcnn does not know by name with one column of class indices: a multi-class task whose classes
        # have no names; the column keeps the indices (training's outputs are "label=0", "label=1", ...).
        return ("label",), labels.astype(np.float32), good
    if info is None or info.task in ("binary-class", "multi-label, binary-class"):
        names = _binary_names(info, c)
        bad = ~np.isin(labels, (0, 1)).all(axis=1)
        for i in np.flatnonzero(bad):
            problems.report(pseudo_path(npz, split, int(i)), f"label {labels[i].tolist()} outside the allowed set 0, 1")
        good &= ~bad
        return names, labels.astype(np.float32), good
    # multi-class / ordinal: one class index per image → one-hot columns
    k = len(info.labels)
    index = labels[:, 0]
    bad = (c != 1) | (index < 0) | (index >= k)
    for i in np.flatnonzero(np.broadcast_to(bad, (n,))):
        problems.report(pseudo_path(npz, split, int(i)), f"class index {labels[i].tolist()} outside 0…{k - 1}")
    good &= ~np.broadcast_to(bad, (n,))
    values = np.zeros((n, k), dtype=np.float32)
    values[np.flatnonzero(good), index[good].astype(np.int64)] = 1.0
    return tuple(info.labels), values, good


def _binary_names(info: MedMNISTInfo | None, c: int) -> tuple[str, ...]:
    if info is not None and info.task == "binary-class" and c == 1:
        return (info.labels[1],)
    if info is not None and len(info.labels) == c:
        return tuple(info.labels)
    return ("label",) if c == 1 else tuple(f"label_{j}" for j in range(c))


def hash_pseudo_paths(paths: list[str]) -> list[str]:
    """SHA-256 of the stored pixel array behind each pseudo-path (shape and dtype included); each split's image
    array is loaded once."""
    loaded: dict[tuple[Path, str], np.ndarray] = {}
    digests = []
    for text in paths:
        npz, split, index = parse_pseudo_path(text)
        if (npz, split) not in loaded:
            try:
                with np.load(npz, allow_pickle=False) as archive:
                    loaded[npz, split] = archive[f"{split}_images"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise DataError(f"{npz}: cannot read {split}_images ({type(exc).__name__}: {exc})") from None
        images = loaded[npz, split]
        if not 0 <= index < len(images):
            raise ManifestError(npz, f"no image {split}[{index}] in this file ({len(images)} images)")
        image = np.ascontiguousarray(images[index])
        digest = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
        digest.update(image.tobytes())
        digests.append(digest.hexdigest())
    return digests
