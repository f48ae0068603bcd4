"""Tiny stand-in image trees around the real label-file excerpts in ../shared/data/labels."""

from __future__ import annotations

import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data"
LABELS = SHARED / "labels"


def pixels(name: str, size: int = 8) -> np.ndarray:
    """Distinct, reproducible content per file name (so content hashes differ unless a test copies a file)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.integers(0, 256, size=(size, size), dtype=np.uint8)


def write_png(path: Path, size: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels(path.name, size)).save(path, format="PNG")
    return path


def write_jpeg(path: Path, size: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels(path.name, size)).save(path, format="JPEG", quality=95)
    return path


def write_dicom(path: Path, *, sex: str = "F", age: str = "051Y", view: str = "PA", size: int = 8) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientSex, ds.PatientAge, ds.ViewPosition, ds.Modality = path.stem, sex, age, view, "CR"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels(path.name, size).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def fake() -> SimpleNamespace:
    """Image writers and the shared label folder (test modules cannot import conftest under importlib mode)."""
    assert LABELS.is_dir(), f"shared label excerpts not found at {LABELS}"
    return SimpleNamespace(png=write_png, jpeg=write_jpeg, dicom=write_dicom, pixels=pixels, labels=LABELS)
