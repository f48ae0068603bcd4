"""Shared pytest fixtures: tiny synthetic image files built on the fly (nothing downloaded, nothing large)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The CLI's consoles render 160 columns when output is not a terminal, unless COLUMNS says otherwise, and they are
# made when radcnn.cli.render is first imported. pytest-xdist workers inherit COLUMNS=80, which would wrap the
# tables the tests read; this runs before any test module imports the CLI, so every worker sees what a pipe sees.
os.environ.pop("COLUMNS", None)

# --- image files (radcnn.data readers and cache) -------------------------------------------------------------


def make_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    transfer_syntax: str = "1.2.840.10008.1.2.1",
    photometric: str | None = None,
    bits_stored: int | None = None,
    **attributes,
) -> Path:
    """Write `pixels` — (H, W), (frames, H, W) or (H, W, 3) — as a DICOM file; extra header fields by keyword.

    Compressed transfer syntaxes are encoded by pydicom (RLE natively, JPEG 2000 through pylibjpeg-openjpeg).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    pixels = np.asarray(pixels)
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3 and photometric != "MONOCHROME2"
    frames = pixels.ndim == 3 and not colour
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[1:3] if frames else pixels.shape[:2]
    if frames:
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    tsyntax = UID(transfer_syntax)
    big_endian = tsyntax == "1.2.840.10008.1.2.2"
    ds.PixelData = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
    if tsyntax.is_compressed:
        ds.compress(tsyntax)
    elif tsyntax != ds.file_meta.TransferSyntaxUID:
        ds.file_meta.TransferSyntaxUID = tsyntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def write_dicom(tmp_path: Path):
    """Factory: ``write_dicom(pixels, name="x.dcm", **header)`` → path of a new DICOM file under tmp_path."""

    def write(pixels: np.ndarray, name: str = "image.dcm", **kwargs) -> Path:
        return make_dicom(tmp_path / name, pixels, **kwargs)

    return write


@pytest.fixture
def radiograph_12bit() -> np.ndarray:
    """A small 12-bit (uint16, 0..4095) chest-like test image: smooth bright body on a dark background."""
    rows, cols = np.mgrid[0:48, 0:40]
    body = np.exp(-(((rows - 24) / 18.0) ** 2 + ((cols - 20) / 14.0) ** 2))
    ramp = (rows * 40 + cols * 7) % 300
    return (300 + 3000 * body + ramp).clip(0, 4095).astype(np.uint16)


@pytest.fixture(scope="session")
def pydicom_testdata() -> dict[str, Path]:
    """Basename → path of pydicom's and pydicom-data's local test files.

    Only the default pattern is used: `get_testdata_file(name)` and named patterns try to *download* files that
    are not installed, and tests never touch the network.
    """
    from pydicom.data import get_testdata_files

    return {Path(p).name: Path(p) for p in get_testdata_files() if Path(p).is_file()}
