"""`ImageMeta` — what a reader found and did — and the limits every format reader shares.

Kept apart from the dispatch so that the format readers (dicom, images, nifti) and the dispatch that calls them
both import it from below: no reader imports the dispatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from radcnn.errors import ImageReadError

# Beyond this many pixels in one frame a header is far more likely corrupt than real (a full-field mammogram
# is ~30 M pixels); refusing early avoids multi-GB allocations from fuzzed Rows/Columns.
MAX_PIXELS = 1 << 27


@dataclass(frozen=True)
class ImageMeta:
    """What a reader found and did. ``window`` is the (center, width) actually applied, None for a full range."""

    path: Path
    format: str
    shape: tuple[int, int]
    bits_stored: int | None
    photometric: str | None  # DICOM PhotometricInterpretation, or the PIL mode for PNG/JPEG/TIFF
    window: tuple[float, float] | None
    frame: int | None  # the frame used when the file holds more than one, else None
    warnings: tuple[str, ...] = ()
    # patient_id, study_uid, modality, view_position, sex, age, manufacturer, institution — when present
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)


def choose_frame(path: Path, frame: int | None, n_frames: int, notes: list[str], *, unit: str = "frame") -> int:
    """The frame (or TIFF page) to read: `frame` when given and present, else the first, noting that others exist."""
    if frame is None:
        if n_frames > 1:
            notes.append(f"multi-{unit} file ({n_frames} {unit}s): {unit} 0 used")
        return 0
    if frame >= n_frames:
        raise ImageReadError(path, f"frame {frame} out of range: the file has {n_frames} {unit}(s), 0..{n_frames - 1}")
    return int(frame)
