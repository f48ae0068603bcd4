"""What radcnn may replace: output folders carry a marker saying which command wrote them.

No command deletes or overwrites anything it did not create unless ``--overwrite`` is given, and then only inside
the output it was told to write. A folder radcnn writes whole (a demo, an explanation set, a synthetic dataset)
gets a small ``.radcnn.json`` marker naming the command; `claim` refuses a destination that holds anything else,
and `replace_directory` swaps a finished temporary folder into place so that a failed or interrupted command never
leaves a half-written output behind.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path

from radcnn.errors import RunDirectoryError
from radcnn.io import write_json_atomic

MARKER = ".radcnn.json"


def mark(directory: str | os.PathLike[str], kind: str) -> Path:
    """Record that radcnn's `kind` command wrote `directory` (call on the temporary folder before it is renamed)."""
    try:
        version = metadata.version("radcnn")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return write_json_atomic(Path(directory) / MARKER, {"written_by": f"radcnn {kind}", "radcnn": version})


def owner(directory: str | os.PathLike[str]) -> str | None:
    """The radcnn command that wrote `directory` ("demo", "explain", ...), or None."""
    marker = Path(directory) / MARKER
    try:
        written_by = json.loads(marker.read_text(encoding="utf-8")).get("written_by", "")
    except (OSError, ValueError, AttributeError):
        return None
    return written_by.removeprefix("radcnn ") if isinstance(written_by, str) and written_by else None


def claim(directory: str | os.PathLike[str], kind: str, *, overwrite: bool = False, option: str = "--out") -> None:
    """Check that `kind` may write `directory`: absent, empty, written by `kind` before, or `overwrite` given.

    Raises RunDirectoryError naming a few of the foreign entries otherwise."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunDirectoryError(f"{directory} exists and is not a folder; choose another {option}")
    if not directory.exists() or overwrite or owner(directory) == kind:
        return
    entries = sorted(p.name for p in directory.iterdir())
    if not entries:
        return
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise RunDirectoryError(
        f"{directory} already exists and holds files radcnn {kind} did not write ({shown}); choose another {option} "
        "or pass --overwrite to replace its contents"
    )


def replace_directory(new: Path, final: Path) -> None:
    """Move the finished folder `new` onto `final`, replacing what was there only once `new` is complete."""
    new, final = Path(new), Path(final)
    os.chmod(new, 0o777 & ~_umask())  # mkdtemp makes 0700 folders; give the output the mode mkdir would
    if not final.exists():
        os.replace(new, final)
        return
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    final.rename(old)
    new.rename(final)
    shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0o022)  # the umask can only be read by setting it
    os.umask(mask)
    return mask
