"""NIfTI reader (nibabel) for 2-D images: .nii, .nii.gz, NIfTI-1 and NIfTI-2.

The voxel array is used as stored, axis 0 = image rows, axis 1 = columns, with no reorientation from the
affine: for a 2-D radiograph the affine rarely means anything, and this keeps a numpy array saved with
``nibabel.Nifti1Image(array, affine)`` round-tripping unchanged. Trailing axes of length 1 are dropped, so an
(H, W, 1) "volume" with one slice is fine; anything with more than one slice is refused, naming the shape.

Intensity: values after scl_slope/scl_inter. ``window="stored"`` uses the header's display range
cal_min..cal_max when it is set (cal_max > cal_min), otherwise the full range of the data.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from radcnn.data.readers.meta import MAX_PIXELS, ImageMeta
from radcnn.data.readers.windowing import Window, apply_full_range, apply_window, require_finite
from radcnn.errors import ImageReadError, MissingExtraError


def read_nifti(path: Path, data: bytes, *, window: Window, frame: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Decode a 2-D NIfTI image held in `data` (gzip-compressed or not)."""
    try:
        import nibabel as nib
    except ImportError as exc:
        raise MissingExtraError("nibabel", "dicom") from exc

    notes: list[str] = []
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ImageReadError(path, f"corrupt gzip stream: {exc}") from exc
    image_class = nib.Nifti2Image if data[:4] in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c") else nib.Nifti1Image
    try:
        img = image_class.from_stream(io.BytesIO(data))
        header = img.header
        shape = tuple(int(s) for s in img.shape)
    except Exception as exc:  # nibabel raises HeaderDataError, ValueError, struct.error... on corrupt input
        raise ImageReadError(path, f"corrupt NIfTI header: {type(exc).__name__}: {exc}") from exc
    spatial = _squeeze_trailing(shape)
    if len(spatial) != 2:
        raise ImageReadError(
            path, f"NIfTI data of shape {shape} is not a 2-D image (a 3-D volume or time series; expected (H, W))"
        )
    if spatial[0] * spatial[1] > MAX_PIXELS:
        raise ImageReadError(path, f"implausible image size {spatial}")
    if frame not in (None, 0):
        raise ImageReadError(path, f"frame {frame} out of range: the file has 1 frame, 0..0")
    if img.get_data_dtype().fields is not None:
        raise ImageReadError(path, f"NIfTI data type {img.get_data_dtype()} (RGB) is not supported")
    try:
        values = np.asarray(img.get_fdata(dtype=np.float32)).reshape(spatial)
    except Exception as exc:  # data block shorter than the header says, or unreadable dtype
        raise ImageReadError(path, f"corrupt NIfTI data: {type(exc).__name__}: {exc}") from exc
    require_finite(path, values)

    applied: tuple[float, float] | None = None
    cal_min, cal_max = float(header["cal_min"]), float(header["cal_max"])
    if window == "stored" and np.isfinite(cal_min) and np.isfinite(cal_max) and cal_max > cal_min:
        window = ((cal_min + cal_max) / 2.0, cal_max - cal_min)
    if isinstance(window, tuple):
        center, width = window
        image, applied = apply_window(values, center, width, "LINEAR_EXACT"), (center, width)
    else:
        image, constant = apply_full_range(values)
        if constant:
            notes.append("constant image (min == max): all pixels set to 0")
    bitpix = int(header["bitpix"]) if "bitpix" in header else None
    meta = ImageMeta(
        path=path,
        format="nifti",
        shape=(int(spatial[0]), int(spatial[1])),
        bits_stored=bitpix if np.issubdtype(img.get_data_dtype(), np.integer) else None,
        photometric=None,
        window=applied,
        frame=None,
        warnings=tuple(notes),
        attributes={},
    )
    return image, meta


def _squeeze_trailing(shape: tuple[int, ...]) -> tuple[int, ...]:
    spatial = list(shape)
    while len(spatial) > 2 and spatial[-1] == 1:
        spatial.pop()
    return tuple(spatial)
