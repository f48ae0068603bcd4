"""From a `DataConfig` to ready train/val/test arrays: manifest → patient split → decoded images → leakage checks.

This is the single place where a data source becomes model input, so training, evaluation and the report all see
exactly the same rows. The split is a pure function of the manifest and the seed; the run saves it and evaluation
checks that a recomputed split still matches. Every dataset gets both leakage checks (`radcnn.data.leakage`), and
their records travel with the data into the run's ``data_summary.json``.

Labels come from the data: a layout's manifest names its label columns (a folder tree's class folders,
MedMNIST's class names, a CSV's own columns or its ``dataset.json`` card); ``data.label_columns`` chooses among
them, for every layout.

Encryption at rest: with a key (``data.key_file`` / ``data.key_env``, or `key=`), a labels CSV and images stored as
``.rcenc`` files (`radcnn encrypt`) are decrypted in memory and the decoded pixels are kept in memory only — the
on-disk decode-once cache is bypassed, because a plaintext cache would defeat encryption at rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radcnn.config import DataConfig
from radcnn.data.kfold import assign_folds, fold_partitions
from radcnn.data.layouts.common import select_labels
from radcnn.data.leakage import LeakageCheck, content_check, patient_check, pixel_hashes
from radcnn.data.loaders import ArraySplit
from radcnn.data.manifest import Manifest
from radcnn.data.splits import EXTERNAL, PARTITIONS, split_by_patient
from radcnn.encryption.files import secret_from
from radcnn.errors import ConfigError, DataError

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class PreparedData:
    splits: dict[str, ArraySplit]
    label_names: tuple[str, ...]
    manifest: Manifest  # all usable rows, with a "split" column
    skipped: list[tuple[str, str]]
    checks: list[LeakageCheck] = field(default_factory=list)  # what was checked, with its result
    official_split: bool = False  # the test (or every) partition came from the dataset itself

    @property
    def partitions(self) -> np.ndarray:
        return self.manifest.table["split"].to_numpy(dtype=str)


def data_key(config: DataConfig) -> Secret | None:
    """The secret a `DataConfig` names (key file, or the NAME of an environment variable holding a passphrase)."""
    return secret_from(config.key_file, config.key_env)


def resolve_layout(config: DataConfig) -> str:
    if config.layout != "auto":
        return config.layout
    from radcnn.data.layouts import detect_layout

    return detect_layout(config.source)


def prepare_data(
    config: DataConfig, *, seed: int = 0, progress: Progress | None = None, key: Secret | bytes | None = None
) -> PreparedData:
    """Load, split, decode and check the data described by `config` (see the module docstring).

    `key` (a `radcnn.encryption.Secret` or key bytes) overrides ``config.key_file`` / ``config.key_env``.
    """
    if not config.source:
        raise ConfigError("data.source is empty: give a labels CSV, a dataset folder or a MedMNIST .npz")
    key = key if key is not None else data_key(config)
    layout = resolve_layout(config)
    manifest = load_manifest(config, layout, key=key)
    if config.hold_out_site:
        _check_site(manifest, config)  # before decoding anything
    if layout == "medmnist":
        images, skipped = _medmnist_images(manifest, config), list(manifest.skipped)
    else:
        manifest, images, skipped = _decode_files(manifest, config, progress=progress, key=key)
    if len(manifest) == 0:
        raise DataError(f"{config.source}: no readable images left")
    if config.hold_out_site:
        partitions, official = _site_held_out_partitions(manifest, config, seed)
    else:
        partitions, official = _partitions(manifest, config, seed)
    return _checked(manifest, images, partitions, skipped, config, official=official)


def load_cohort(config: DataConfig, *, progress: Progress | None = None, key=None, split: str = ""):
    """Every readable row of a data source, unsplit (an external cohort): (manifest, images, skipped).

    `split` keeps only the rows of one of the layout's own partitions (e.g. "test" of a MedMNIST .npz).
    """
    if not config.source:
        raise ConfigError("no data source given for the external cohort")
    layout = resolve_layout(config)
    manifest = load_manifest(config, layout, key=key)
    if split:
        if "split" not in manifest.table.columns:
            raise DataError(f"{config.source}: split {split!r} requested, but this {layout} dataset has no splits")
        present = sorted(manifest.table["split"].astype(str).unique())
        if split not in present:
            raise DataError(f"{config.source}: no {split!r} split; the dataset has: {', '.join(present)}")
        manifest = manifest.select(np.flatnonzero(manifest.table["split"].astype(str).to_numpy() == split))
    if layout == "medmnist":
        images, skipped = _medmnist_images(manifest, config), list(manifest.skipped)
    else:
        manifest, images, skipped = _decode_files(manifest, config, progress=progress, key=key)
    if len(manifest) == 0:
        raise DataError(f"{config.source}: no readable images in the external cohort")
    return manifest, images, skipped


def _site_held_out_partitions(manifest: Manifest, config: DataConfig, seed: int) -> tuple[np.ndarray, bool]:
    """Site hold-out: every image of ``config.hold_out_site`` becomes the "external" cohort; the other sites are
    split into train/val/test by patient as usual. A patient imaged at the held-out site and elsewhere would
    leak; the patient leakage check (run on all partitions) refuses that."""
    _check_site(manifest, config)
    held = manifest.table["site"].astype(str).to_numpy() == config.hold_out_site
    rest = np.flatnonzero(~held)
    partitions = np.full(len(manifest), EXTERNAL, dtype=object)
    partitions[rest] = split_by_patient(
        manifest.select(rest), val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=seed
    )
    log.info("site %s held out: %d images form the external cohort", config.hold_out_site, int(held.sum()))
    return partitions.astype(str), False


def _check_site(manifest: Manifest, config: DataConfig) -> None:
    site = config.hold_out_site
    if "site" not in manifest.table.columns:
        columns = ", ".join(map(str, manifest.table.columns))
        raise DataError(
            f"{config.source}: --hold-out-site {site} needs a site column, and this dataset has none "
            f"(columns: {columns}); add a 'site' column to the labels CSV"
        )
    sites = manifest.table["site"].astype(str).to_numpy()
    present = sorted(set(sites))
    if site not in present:
        raise DataError(f"{config.source}: no images from site {site!r}; sites present: {', '.join(present)}")
    if len(present) < 2:
        raise DataError(f"{config.source}: only site {site!r} is present; nothing is left to train on")


def load_manifest(config: DataConfig, layout: str, *, key=None) -> Manifest:
    """The layout's manifest, keeping the label columns ``config.label_columns`` chooses (all when empty)."""
    from radcnn.data.layouts import load_layout

    options = {"on_error": config.on_error, **config.layout_options}
    if layout == "csv":
        options.setdefault("label_columns", config.label_columns or None)
        options["key"] = key
    elif layout == "dicom_folder":
        raise DataError(
            f"{config.source}: a folder of DICOM files without labels (a PACS export) can be inspected "
            "(`radcnn data inspect`), de-identified (`radcnn deid`) and predicted on (`radcnn predict`), but not "
            "trained on: add a labels CSV (columns path, patient_id and one column per label)"
        )
    manifest = load_layout(layout, config.source, **options)
    if not config.label_columns or layout == "csv":
        return manifest
    wanted = select_labels(manifest.label_names, config.label_columns, Path(config.source))
    return Manifest(manifest.table, wanted, manifest.source, manifest.skipped)


def _decode_files(manifest: Manifest, config: DataConfig, *, progress: Progress | None, key):
    """Decode every image (into the on-disk cache, or in memory with a key); drop and list the unreadable ones."""
    from radcnn.data.cache.build import build_cache
    from radcnn.data.cache.memory import decode_in_memory

    common = dict(
        size=tuple(config.image_size),
        window=config.window,
        workers=config.workers,
        on_error=config.on_error,
        progress=progress,
    )
    if key is not None:
        log.info("a data key is set: images are decoded in memory only; the on-disk cache is not used")
        cached = decode_in_memory(manifest.paths, key=key, **common)
    else:
        cached = build_cache(manifest.paths, cache_dir=cache_directory(config), **common)
    skipped = list(manifest.skipped)
    images = _RowView(cached, np.arange(len(cached)))
    if cached.skipped:
        bad = {str(Path(p).resolve()) for p, _ in cached.skipped}
        skipped += [(str(p), why) for p, why in cached.skipped]
        keep = np.flatnonzero([str(Path(p).resolve()) not in bad for p in manifest.table["path"]])
        manifest, images = manifest.select(keep), _RowView(cached, keep)
    return manifest, images, skipped


def cache_directory(config: DataConfig) -> Path:
    """``data.cache_dir``, else ``.radcnn-cache`` beside the labels file (or inside the dataset folder)."""
    if config.cache_dir:
        return Path(config.cache_dir)
    source = Path(config.source)
    return (source.parent if source.is_file() else source) / ".radcnn-cache"


def _medmnist_images(manifest: Manifest, config: DataConfig) -> np.ndarray:
    """The manifest rows' pixels from the .npz, resized to the model input (the layout owns names and labels)."""
    from radcnn.data.layouts.medmnist import parse_pseudo_path
    from radcnn.data.layouts.medmnist_arrays import load_medmnist
    from radcnn.data.transforms import preprocess

    parts = load_medmnist(config.source)
    size = tuple(config.image_size)
    out = np.empty((len(manifest), 1, *size), dtype=np.float32)
    for row, text in enumerate(manifest.table["path"]):
        _npz, split, index = parse_pseudo_path(text)
        image = parts[split].images[index]
        out[row] = image[None] if image.shape == size else preprocess(image, size)
    return out


def _partitions(manifest: Manifest, config: DataConfig, seed: int) -> tuple[np.ndarray, bool]:
    """Patient-level split; a layout's official split is kept (val carved at patient level when it has none).
    In k-fold mode (data.folds) the test split is fold data.fold and val is carved from the other folds."""
    if config.folds:
        folds = assign_folds(manifest, config.folds, seed=seed)
        partitions = fold_partitions(folds, config.fold - 1).astype(object)
        rest = np.flatnonzero(partitions == "train")
        partitions[rest] = split_by_patient(
            manifest.select(rest), val_fraction=config.val_fraction, test_fraction=0.0, seed=seed
        )
        return partitions.astype(str), False
    official = manifest.table["split"].astype(str).to_numpy() if "split" in manifest.table.columns else None
    if official is None or not np.isin(official, ("test", "val")).any():
        return split_by_patient(
            manifest, val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=seed
        ), False
    partitions = np.where(np.isin(official, PARTITIONS), official, "train").astype(object)
    missing = [p for p in ("val", "test") if not (partitions == p).any()]
    if missing:
        rest = np.flatnonzero(partitions == "train")
        fractions = {p: (getattr(config, f"{p}_fraction") if p in missing else 0.0) for p in ("val", "test")}
        carved = split_by_patient(
            manifest.select(rest), val_fraction=fractions["val"], test_fraction=fractions["test"], seed=seed
        )
        partitions[rest] = carved
        log.info("kept the layout's official split; %s carved from train at patient level", " and ".join(missing))
    return partitions.astype(str), True


def _checked(manifest, images, partitions, skipped, config: DataConfig, *, official: bool) -> PreparedData:
    """Run both leakage checks, apply the content policy, and assemble the splits."""
    checks = [patient_check(manifest.table["patient_id"].astype(str).to_numpy(), partitions)]
    paths = manifest.table["path"].astype(str).tolist()
    content, keep = content_check(paths, partitions, pixel_hashes(images), policy=config.on_leakage, official=official)
    checks.append(content)
    if not keep.all():
        rows = np.flatnonzero(keep)
        manifest, partitions = manifest.select(rows), partitions[rows]
        images = _RowView(images, rows)
        skipped = [*skipped, *content.dropped]
    return _assemble(manifest, images, partitions, skipped, checks, official)


def _assemble(manifest: Manifest, images, partitions: np.ndarray, skipped, checks=(), official=False) -> PreparedData:
    table = manifest.table.copy()
    table["split"] = partitions
    manifest = Manifest(table, manifest.label_names, manifest.source, tuple(skipped))
    labels = manifest.labels()
    splits = {}
    for part in (*PARTITIONS, EXTERNAL) if (partitions == EXTERNAL).any() else PARTITIONS:
        rows = np.flatnonzero(partitions == part)
        splits[part] = ArraySplit(
            images=_RowView(images, rows), labels=labels[rows], table=table.iloc[rows].reset_index(drop=True)
        )
    for part in ("train", "val"):
        if len(splits[part]) == 0:
            raise DataError(f"{manifest.source}: the {part} split is empty; add images or change the fractions")
    return PreparedData(splits, manifest.label_names, manifest, list(skipped), list(checks), official)


class _RowView:
    """Rows `rows` of an (N, 1, H, W) image source without copying it, as float32 in [0, 1].

    The source is a plain array (MedMNIST, already float), the decode-once cache, whose `batch` reads several
    memory-mapped rows at once and converts them from the stored uint16, or another view.
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
