"""From a `DataConfig` to ready train/val/test arrays: manifest → patient split → decode-once cache.

This is the single place where a data source becomes model input, so training, evaluation and the report all see
exactly the same rows. The split is a pure function of the manifest and the seed; the run saves it and
evaluation checks that a recomputed split still matches.

Encryption at rest: with a key (``data.key_file`` / ``data.key_env``, or `key=`), a labels CSV and images stored
as ``.rcenc`` files (`radcnn encrypt`) are decrypted in memory and the decoded pixels are kept in memory only —
the on-disk decode-once cache is bypassed, because a plaintext cache would defeat encryption at rest (see
`radcnn.data.encrypted`). Unencrypted files in the same tree are read as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radcnn.config import DataConfig
from radcnn.data.datamodule import ArraySplit
from radcnn.data.encrypted import (
    ENCRYPTED_SUFFIX,
    data_key,
    decode_in_memory,
    find_labels_csv,
    is_encrypted_file,
    key_needed,
    stored_file,
)
from radcnn.data.manifest import Manifest, manifest_from_arrays, read_labels_csv
from radcnn.data.splits import PARTITIONS, check_leakage, split_by_patient
from radcnn.errors import ConfigError, DataError, ManifestError

if TYPE_CHECKING:
    from radcnn.privacy.keys import Secret

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class PreparedData:
    splits: dict[str, ArraySplit]
    label_names: tuple[str, ...]
    manifest: Manifest  # all usable rows, with a "split" column
    skipped: list[tuple[str, str]]

    @property
    def partitions(self) -> np.ndarray:
        return self.manifest.table["split"].to_numpy(dtype=str)


def resolve_layout(config: DataConfig) -> str:
    if config.layout != "auto":
        return config.layout
    if Path(config.source).suffix.lower() == ".npz":
        return "medmnist"
    from radcnn.data.layouts import detect_layout

    return detect_layout(config.source)


def prepare_data(
    config: DataConfig, *, seed: int = 0, progress: Progress | None = None, key: Secret | bytes | None = None
) -> PreparedData:
    """Load, split and cache the data described by `config`.

    `key` (a `radcnn.privacy.Secret` or key bytes) overrides ``config.key_file`` / ``config.key_env``; with either,
    encrypted files are decrypted and decoded in memory and no cache is written (see the module docstring).
    """
    if not config.source:
        raise ConfigError("data.source is empty: give a labels CSV, a dataset folder or a MedMNIST .npz")
    key = key if key is not None else data_key(config)
    encrypted_labels = _encrypted_labels_file(config)
    if encrypted_labels is not None and key is None:
        raise key_needed(encrypted_labels)
    layout = "csv" if encrypted_labels is not None and config.layout == "auto" else resolve_layout(config)
    if layout == "medmnist":
        return _prepare_medmnist(config, seed=seed)
    return _prepare_files(load_manifest(config, layout, key=key), config, seed=seed, progress=progress, key=key)


def _encrypted_labels_file(config: DataConfig) -> Path | None:
    """The source's labels CSV when it is stored encrypted (``labels.csv.rcenc``), else None.

    Only a labels CSV can be read encrypted (its rows name the images); other layouts find images by walking
    folders for image suffixes, and a MedMNIST .npz is loaded as a whole: those are read unencrypted."""
    source = Path(config.source)
    if source.is_dir():
        found = [p for p in sorted(source.glob(f"*.csv{ENCRYPTED_SUFFIX}")) if p.is_file() and is_encrypted_file(p)]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ConfigError(f"{source}: several encrypted labels files ({names}); pass the one to use as data.source")
        return found[0] if found and not any(source.glob("*.csv")) else None
    stored = stored_file(source)
    if stored is None or not is_encrypted_file(stored):
        return None
    if stored.name.lower().removesuffix(ENCRYPTED_SUFFIX).endswith(".csv"):
        return stored
    raise ConfigError(
        f"{stored}: an encrypted data source must be a labels CSV (.csv.rcenc, or a folder holding one) whose "
        "rows list the images; decrypt other layouts (e.g. a MedMNIST .npz) with `radcnn decrypt` first"
    )


def load_manifest(config: DataConfig, layout: str, *, key=None) -> Manifest:
    """The manifest of a file-based layout, with the label columns the config asks for."""
    from radcnn.data.layouts import load_layout

    if key is not None and layout in ("csv", "labels_csv"):
        return _load_labels_csv(config, key)
    options = {"on_error": config.on_error, **config.layout_options}
    default_labels = DataConfig().label_columns
    if layout in ("csv", "labels_csv"):
        options.setdefault("label_columns", config.label_columns)
    elif config.label_columns and config.label_columns != default_labels and "labels" not in options:
        options["labels"] = config.label_columns
    manifest = load_layout(layout, config.source, **options)
    wanted = config.label_columns if layout in ("csv", "labels_csv") else manifest.label_names
    if config.label_columns != default_labels and layout not in ("csv", "labels_csv"):
        missing = [name for name in config.label_columns if name not in manifest.table.columns]
        if missing:
            raise ConfigError(
                f"{config.source}: no label(s) {', '.join(missing)}; found {', '.join(manifest.label_names)}"
            )
        wanted = config.label_columns
    return Manifest(manifest.table, tuple(wanted), manifest.source, manifest.skipped)


def _load_labels_csv(config: DataConfig, key) -> Manifest:
    """The "csv" layout read with a key: the labels file and the image checks see `.rcenc` files.

    (Not through the layout registry: a key is not a layout option, which users may set from the command line.)
    The column options are those of `radcnn.data.layouts.csv_manifest`."""
    csv_path = find_labels_csv(config.source)
    if csv_path is None:
        raise ManifestError(config.source, "no labels CSV (plain or .csv.rcenc) found")
    options = dict(config.layout_options)
    path_column = options.pop("path_column", "path")
    patient_column = options.pop("patient_column", "patient_id")
    site_column = options.pop("site_column", None)
    labels = options.pop("label_columns", config.label_columns)
    check_files = options.pop("check_files", True)
    if options:
        raise ConfigError(f"layout 'csv' has no option(s) {', '.join(sorted(options))}")
    columns = {path_column: "path", patient_column: "patient_id", site_column: "site"}
    return read_labels_csv(
        csv_path,
        tuple(c.strip() for c in labels.split(",") if c.strip()) if isinstance(labels, str) else tuple(labels),
        check_files=check_files,
        on_error=config.on_error,
        columns={k: v for k, v in columns.items() if k and k != v},
        patient_ids_from_paths=not patient_column,
        key=key,
    )


def _prepare_files(
    manifest: Manifest, config: DataConfig, *, seed: int, progress: Progress | None, key=None
) -> PreparedData:
    from radcnn.data.cache import build_cache

    skipped = list(manifest.skipped)
    if key is not None:
        log.info("a data key is set: images are decoded in memory only; the on-disk cache is not used")
        cached = decode_in_memory(
            manifest.paths,
            size=tuple(config.image_size),
            key=key,
            window=config.window,
            workers=config.workers,
            on_error=config.on_error,
            progress=progress,
        )
    else:
        source = Path(config.source)
        cache_dir = (
            Path(config.cache_dir)
            if config.cache_dir
            else (source.parent if source.is_file() else source) / ".radcnn-cache"
        )
        cached = build_cache(
            manifest.paths,
            size=tuple(config.image_size),
            cache_dir=cache_dir,
            window=config.window,
            workers=config.workers,
            on_error=config.on_error,
            progress=progress,
        )
    # Rows are read through the cache object: its store is uint16, and `batch` turns it into [0, 1] floats.
    images = _RowView(cached, np.arange(len(cached)))
    if cached.skipped:
        bad = {str(Path(p).resolve()) for p, _ in cached.skipped}
        skipped += [(str(p), why) for p, why in cached.skipped]
        keep = np.array([str(Path(p).resolve()) not in bad for p in manifest.table["path"]])
        manifest = manifest.select(np.flatnonzero(keep))
        images = _RowView(cached, np.flatnonzero(keep))
    if len(manifest) == 0:
        raise DataError(f"{config.source}: no readable images left")
    return _assemble(manifest, images, _partitions(manifest, config, seed), skipped)


def _partitions(manifest: Manifest, config: DataConfig, seed: int) -> np.ndarray:
    """Patient-level split; an official test split in the layout is kept and val is carved from the rest."""
    official = manifest.table["split"].astype(str).to_numpy() if "split" in manifest.table.columns else None
    if official is None or not (official == "test").any():
        return split_by_patient(
            manifest, val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=seed
        )
    partitions = np.where(official == "test", "test", "train").astype(object)
    rest = np.flatnonzero(partitions == "train")
    carved = split_by_patient(manifest.select(rest), val_fraction=config.val_fraction, test_fraction=0.0, seed=seed)
    partitions[rest] = carved
    check_leakage(manifest.table["patient_id"].to_numpy(), partitions)
    log.info("kept the layout's official test split; val carved from the rest at patient level")
    return partitions.astype(str)


def _prepare_medmnist(config: DataConfig, *, seed: int) -> PreparedData:
    from radcnn.data.cache import preprocess
    from radcnn.data.medmnist import load_medmnist

    parts = load_medmnist(config.source)
    n_labels = parts["train"].labels.shape[1]
    names = tuple(config.label_columns) if len(config.label_columns) == n_labels else _default_names(n_labels)
    tables, arrays, labels, partitions = [], [], [], []
    for part in PARTITIONS:
        if part not in parts:
            continue
        split = parts[part]
        size = tuple(config.image_size)
        if split.images.shape[1:] == size:
            arrays.append(split.images[:, None].astype(np.float32))
        else:
            arrays.append(np.stack([preprocess(img, size) for img in split.images]))
        labels.append(split.labels)
        tables.append(manifest_from_arrays(split.labels, names, prefix=f"{Path(config.source).name}:{part}").table)
        partitions += [part] * len(split.labels)
    import pandas as pd

    manifest = Manifest(pd.concat(tables, ignore_index=True), names, Path(config.source))
    images = np.concatenate(arrays)
    partitions_arr = np.array(partitions)
    missing = [p for p in ("val", "test") if p not in parts]
    if missing:
        # The file lacks an official split: carve it out of train, image = patient (MedMNIST has no patient ids).
        train_rows = np.flatnonzero(partitions_arr == "train")
        sub = manifest.select(train_rows)
        fractions = {
            "val": config.val_fraction if "val" in missing else 0.0,
            "test": config.test_fraction if "test" in missing else 0.0,
        }
        carved = split_by_patient(sub, val_fraction=fractions["val"], test_fraction=fractions["test"], seed=seed)
        partitions_arr[train_rows] = carved
        log.info("%s has no %s split; carved from train", config.source, " or ".join(missing))
    return _assemble(manifest, images, partitions_arr, [])


def _default_names(n: int) -> tuple[str, ...]:
    return ("label",) if n == 1 else tuple(f"label_{i}" for i in range(n))


def _assemble(manifest: Manifest, images, partitions: np.ndarray, skipped) -> PreparedData:
    table = manifest.table.copy()
    table["split"] = partitions
    manifest = Manifest(table, manifest.label_names, manifest.source, tuple(skipped))
    labels = manifest.labels()
    splits = {}
    for part in PARTITIONS:
        rows = np.flatnonzero(partitions == part)
        splits[part] = ArraySplit(
            images=_RowView(images, rows), labels=labels[rows], table=table.iloc[rows].reset_index(drop=True)
        )
    for part in ("train", "val"):
        if len(splits[part]) == 0:
            raise DataError(f"{manifest.source}: the {part} split is empty; add images or change the fractions")
    return PreparedData(splits=splits, label_names=manifest.label_names, manifest=manifest, skipped=skipped)


class _RowView:
    """Rows `rows` of an (N, 1, H, W) image source without copying it, as float32 in [0, 1].

    The source is either a plain array (MedMNIST, already float) or the decode-once cache, whose `batch` reads
    several memory-mapped rows at once and converts them from the stored uint16.
    """

    def __init__(self, base, rows: np.ndarray):
        self.base, self.rows = base, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        picked = self.rows[index]
        if not isinstance(picked, np.ndarray):
            return self._fetch(np.array([picked]))[0]
        return self._fetch(picked)

    def _fetch(self, picked: np.ndarray) -> np.ndarray:
        if hasattr(self.base, "batch"):
            return self.base.batch(picked)
        order = np.argsort(picked, kind="stable")
        out = np.empty((len(picked), *self.base.shape[1:]), dtype=np.float32)
        out[order] = self.base[picked[order]]
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])
