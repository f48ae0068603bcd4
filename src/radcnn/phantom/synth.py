"""Write a phantom dataset to disk: images (DICOM or 16-bit PNG), lesion and lung masks, and `labels.csv`.

Layout of `out_dir` (all paths in the CSV are relative to it, with forward slashes)::

    labels.csv
    dataset.json                        the dataset card: synthetic, default labels (nodule), counts, seed
    images/PX000001/study01.dcm        (or .png)
    masks/PX000001/study01_lesions.png  8-bit instance mask: 0 = background, k = the k-th entry of `boxes`
    masks/PX000001/study01_lung.png     8-bit lung mask: 255 = lung field

`labels.csv` columns: path, patient_id, study (0-based study index), site, view, sex, age, nodule,
consolidation, boxes (JSON list of {"label", "x0", "y0", "x1", "y1"}, half-open pixel boxes of the stored image:
the finding's mask pixels lie in mask[y0:y1, x0:x1]), mask_path, then study_date and lung_mask_path.

The whole folder is built under a temporary name beside `out_dir` and renamed into place only when complete, so
a crash never leaves a half-written dataset. The same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from radcnn.errors import ConfigError, RunDirectoryError
from radcnn.io import write_json_atomic
from radcnn.outputs import mark, replace_directory
from radcnn.phantom.generator import PhantomConfig, render_study, sample_patient
from radcnn.phantom.lesions import LESION_LABELS
from radcnn.phantom.sites import SiteProfile, resolve_sites
from radcnn.phantom.writers import write_dicom, write_mask_png, write_png16

log = logging.getLogger(__name__)

FORMATS = ("dicom", "png")
CSV_COLUMNS = (
    "path",
    "patient_id",
    "study",
    "site",
    "view",
    "sex",
    "age",
    *LESION_LABELS,
    "boxes",
    "mask_path",
    "study_date",
    "lung_mask_path",
)
DEFAULT_LABEL = "nodule"  # the phantom's task: what a run on a phantom dataset trains on unless told otherwise
DEFAULT_PATIENTS = 200  # ~500 images at 2.5 studies per patient: the demo's dataset

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthResult:
    out_dir: Path
    csv_path: Path
    n_images: int
    n_patients: int
    positives: dict[str, int]  # images with each finding
    positive_patients: dict[str, int]  # patients with the finding on at least one image
    sites: dict[str, int] = field(default_factory=dict)  # images per site


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{out_dir} is not empty; choose another folder or pass overwrite=True (--overwrite)")


def _render_patient(args: tuple) -> list[dict[str, str]]:
    """Render and write every study of one patient into `root`; return its CSV rows. Runs in worker processes."""
    root, seed, index, sites, config, size, fmt = args
    patient = sample_patient(seed, index, sites=sites, config=config)
    rows = []
    for study in range(len(patient.studies)):
        image = render_study(patient, study, size)
        stem = f"study{study + 1:02d}"
        folder = Path(patient.patient_id)
        image_rel = folder / f"{stem}.{'dcm' if fmt == 'dicom' else 'png'}"
        mask_rel, lung_rel = folder / f"{stem}_lesions.png", folder / f"{stem}_lung.png"
        for sub in ("images", "masks"):
            (root / sub / folder).mkdir(parents=True, exist_ok=True)
        if fmt == "dicom":
            write_dicom(root / "images" / image_rel, image.image, patient, study)
        else:
            write_png16(root / "images" / image_rel, image.image)
        write_mask_png(root / "masks" / mask_rel, image.lesion_mask)
        write_mask_png(root / "masks" / lung_rel, image.lung_mask.astype("uint8") * 255)
        spec = patient.studies[study]
        rows.append(
            {
                "path": f"images/{image_rel.as_posix()}",
                "patient_id": patient.patient_id,
                "study": str(study),
                "site": patient.site.name,
                "view": "PA",
                "sex": patient.sex,
                "age": str(spec.age),
                **{label: str(value) for label, value in image.labels.items()},
                "boxes": json.dumps([box.as_dict() for box in image.boxes], separators=(",", ":")),
                "mask_path": f"masks/{mask_rel.as_posix()}",
                "study_date": spec.date.isoformat(),
                "lung_mask_path": f"masks/{lung_rel.as_posix()}",
            }
        )
    return rows


def synthesize_dataset(
    out_dir: str | Path,
    *,
    n_patients: int = DEFAULT_PATIENTS,
    size: int = 256,
    fmt: str = "dicom",
    sites: str | Sequence[str | SiteProfile] | None = None,
    seed: int = 0,
    config: PhantomConfig | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
) -> SynthResult:
    """Render `n_patients` phantom patients (all their follow-ups) into `out_dir` and write `labels.csv`.

    `sites`: None (all), "site_a,site_b", or a sequence of names/profiles; each patient is imaged at one of them.
    `progress(done, total)` is called after each image. `workers` > 1 renders patients in parallel processes;
    the output is identical either way.
    """
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if n_patients < 1:
        raise ConfigError(f"n_patients must be at least 1; got {n_patients}")
    if size < 32:
        raise ConfigError(f"size must be at least 32 pixels; got {size}")
    if seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1; got {workers}")
    site_profiles = resolve_sites(sites)
    config = config or PhantomConfig()
    _check_out_dir(out_dir, overwrite)

    # The studies per patient are known before rendering, so progress has a true total from the start.
    total = sum(len(sample_patient(seed, i, sites=site_profiles, config=config).studies) for i in range(n_patients))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        jobs = [(tmp, seed, i, site_profiles, config, size, fmt) for i in range(n_patients)]
        rows: list[dict[str, str]] = []
        if workers == 1:
            results = map(_render_patient, jobs)
            pool = None
        else:
            # spawn, not fork: the parent may hold threads (torch, Rich) that a forked child would inherit locked.
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_render_patient, jobs, chunksize=4)
        try:
            for patient_rows in results:  # in patient order either way: the CSV is deterministic
                rows.extend(patient_rows)
                if progress is not None:
                    progress(len(rows), total)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "labels.csv").write_text(buffer.getvalue(), encoding="utf-8")
        _write_card(tmp, rows, n_patients=n_patients, size=size, fmt=fmt, seed=seed, sites=site_profiles)
        mark(tmp, "synth")
        replace_directory(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

    result = SynthResult(
        out_dir=out_dir,
        csv_path=out_dir / "labels.csv",
        n_images=len(rows),
        n_patients=n_patients,
        positives={label: sum(row[label] == "1" for row in rows) for label in LESION_LABELS},
        positive_patients={
            label: len({row["patient_id"] for row in rows if row[label] == "1"}) for label in LESION_LABELS
        },
        sites={site.name: sum(row["site"] == site.name for row in rows) for site in site_profiles},
    )
    log.debug("wrote %d images of %d patients to %s", result.n_images, n_patients, out_dir)
    return result


def _write_card(root: Path, rows: list[dict[str, str]], **facts) -> None:
    """`dataset.json`: what the folder holds, and which labels a run trains on by default (the CSV layout reads
    ``labels``); ``synthetic`` makes every report and model card say that no patient is behind these images."""
    card = {
        "name": "radcnn phantom",
        "synthetic": True,
        "labels": [DEFAULT_LABEL],
        "all_labels": list(LESION_LABELS),
        "images": len(rows),
        "patients": facts["n_patients"],
        "size": facts["size"],
        "format": facts["fmt"],
        "seed": facts["seed"],
        "sites": [site.name for site in facts["sites"]],
    }
    write_json_atomic(root / "dataset.json", card)
