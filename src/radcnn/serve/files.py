"""`collect_images`: the files to predict, from a mix of file and folder arguments.

A named file is always kept (an unreadable one then fails or gets an error row, as the user asked). A folder is
walked recursively in sorted order; hidden entries are ignored, and a file is taken when its first bytes are an
image format radcnn reads (or it is encrypted, `.rcenc`). Everything else — `labels.csv`, a DICOMDIR, notes —
is returned as skipped with the reason, so nothing is dropped without a word.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from radcnn.data.readers.dispatch import sniff_format
from radcnn.encryption.format import MAGIC as ENCRYPTED_MAGIC
from radcnn.encryption.format import SUFFIX as ENCRYPTED_SUFFIX
from radcnn.errors import DataError

_HEAD = 1024  # sniffing reads this much of each file; gzipped NIfTI needs a little past the 348-byte header


@dataclass(frozen=True)
class CollectedImages:
    files: list[Path]
    skipped: list[tuple[Path, str]]


def _is_image(path: Path) -> tuple[bool, str]:
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
    except OSError as exc:
        return False, f"cannot read ({exc.strerror or exc})"
    if path.name.endswith(ENCRYPTED_SUFFIX) or head.startswith(ENCRYPTED_MAGIC):
        return True, ""
    if path.name.upper() == "DICOMDIR":
        return False, "a DICOMDIR index, not an image"
    return (True, "") if sniff_format(path, head) else (False, "not an image format radcnn reads")


def collect_images(paths: Iterable[str | Path]) -> CollectedImages:
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = 0
        for item in sorted(path.rglob("*")):
            relative = item.relative_to(path)
            if any(part.startswith(".") for part in relative.parts) or not item.is_file():
                continue
            ok, why = _is_image(item)
            if ok:
                files.append(item)
                found += 1
            else:
                skipped.append((item, why))
        if not found:
            raise DataError(f"{path}: no image files in this folder ({len(skipped)} other files)")
    return CollectedImages(files, skipped)
