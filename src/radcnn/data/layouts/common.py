"""What every layout loader shares: the on_error policy for bad rows, image file discovery, boxes as JSON text,
and the `skipped.csv` report.

A loader never drops a row silently. Each problem goes through :class:`Problems`: under ``on_error="fail"`` it raises
:class:`~radcnn.errors.ManifestError` naming the file, the CSV row (header = row 1) and the column; under
``on_error="skip"`` it is recorded as a ``(what, why)`` pair that ends up in ``Manifest.skipped`` and, through
:func:`write_skipped_csv`, in a ``skipped.csv`` beside the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from radcnn.data.manifest import Manifest
from radcnn.errors import ConfigError, ManifestError
from radcnn.io import atomic_path

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")

# Suffixes `read_image` can decode (it sniffs the bytes; the suffix only finds candidate files in a folder tree).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".dic", ".ima", ".nii", ".nii.gz")


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    return on_error


class Problems:
    """Collects bad-input reports under one on_error policy (fail → raise at once, skip → record)."""

    def __init__(self, on_error: str):
        self.on_error = check_on_error(on_error)
        self.items: list[tuple[str, str]] = []

    def report(self, source: Path | str, reason: str, *, row: int | None = None, column: str | None = None) -> None:
        """`row` is the 1-based CSV row (the header is row 1), `column` the column that holds the bad value."""
        if self.on_error == "fail":
            raise ManifestError(source, reason, row=row, column=column)
        self.note(_where(source, row, column), reason)

    def note(self, what: str, reason: str) -> None:
        """Record something left out that is expected rather than wrong (e.g. the archive's duplicate copy)."""
        self.items.append((what, reason))

    @property
    def skipped(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.items)


def _where(source: Path | str, row: int | None, column: str | None) -> str:
    where = str(source)
    if row is not None:
        where += f" row {row}"
    if column is not None:
        where += f", column {column!r}"
    return where


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under `root`, in a stable (sorted) order, without following symlinked folders."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def index_images(folders: Iterable[Path], problems: Problems) -> dict[str, Path]:
    """File name → path for every image under `folders` (public datasets name images uniquely).

    A name found twice is recorded as skipped: which copy a label row means cannot be decided.
    """
    found: dict[str, Path] = {}
    for folder in folders:
        for path in walk_files(folder):
            if not is_image_file(path) or path.name.startswith("."):
                continue
            if path.name in found:
                problems.note(str(path), f"duplicate file name: {path.name} is also at {found[path.name]}; first kept")
                continue
            found[path.name] = path
    return found


def hash_files(paths: list[str] | list[Path], *, workers: int | None = None) -> list[str]:
    """SHA-256 of each file, in order (for dropping duplicate copies inside a dataset tree). Threads suffice: file
    reads and hashlib both release the GIL."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_file_digest, [str(p) for p in paths], chunksize=16))


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ManifestError(path, f"cannot read the file to hash it ({exc.strerror or exc})") from None
    return digest.hexdigest()


def boxes_to_json(boxes: list[dict]) -> str:
    """Boxes as compact JSON text, so the manifest stays a flat table that round-trips through CSV."""
    return json.dumps(boxes, separators=(",", ":"))


def parse_boxes(text: str) -> list[dict]:
    """The `bboxes` column back to a list of ``{"label", "x", "y", "w", "h"}`` (pixels of the original image)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return json.loads(text)


def write_skipped_csv(skipped: Manifest | Iterable[tuple[str, str]], path: str | Path) -> int:
    """Write every skipped item as a row ``what,why`` (atomically); return how many there were."""
    items = list(skipped.skipped if isinstance(skipped, Manifest) else skipped)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["what", "why"])
        writer.writerows(items)
    return len(items)


def summarize_skipped(skipped: Manifest | Iterable[tuple[str, str]]) -> dict[str, int]:
    """Counts per kind of reason (the text before the first colon), most frequent first."""
    items = skipped.skipped if isinstance(skipped, Manifest) else skipped
    counts = Counter(why.split(":", 1)[0].strip() for _, why in items)
    return dict(counts.most_common())


def select_labels(all_labels: tuple[str, ...], wanted: Iterable[str] | str | None, source: Path) -> tuple[str, ...]:
    """The label columns a caller asked for (all when None), each checked against the dataset's own names."""
    if wanted is None:
        return all_labels
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    unknown = [w for w in wanted if w not in all_labels]
    if unknown or not wanted:
        raise ConfigError(f"{source}: unknown label(s) {unknown or '(none given)'}; valid: {', '.join(all_labels)}")
    return wanted
