"""Fuzzing the DICOM reader: mutated files either load within the contract or raise ImageReadError.

Never a crash, a hang or a foreign exception. The seeds are small valid files: a generated 12-bit explicit-VR
image with a window and rescale, and real RLE / JPEG 2000 / JPEG-LS files from pydicom's test data, so the codec
plugins see corrupt codestreams too. Fixed seed, a few hundred mutations, a few seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from radcnn.data.readers.dispatch import read_image_bytes
from radcnn.errors import ImageReadError

MUTATIONS_PER_SEED = 90


def _mutate(data: bytes, rng: np.random.Generator, kind: int) -> bytes:
    out = bytearray(data)
    if kind == 0:  # bit flips
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(len(out)))
            out[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # truncation
        out = out[: int(rng.integers(1, len(out)))]
    else:  # random byte insertions
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(out)))
            out[i:i] = rng.bytes(int(rng.integers(1, 9)))
    return bytes(out)


@pytest.fixture
def seeds(write_dicom, radiograph_12bit, pydicom_testdata) -> dict[str, bytes]:
    generated = write_dicom(
        radiograph_12bit, bits_stored=12, RescaleSlope=1.5, RescaleIntercept=-100, WindowCenter=2000, WindowWidth=2500
    )
    out = {"generated.dcm": generated.read_bytes()}
    for name in ("MR_small_RLE.dcm", "JPEG2000.dcm", "JPEGLSNearLossless_08.dcm"):
        out[name] = pydicom_testdata[name].read_bytes()
    return out


@pytest.mark.filterwarnings("ignore")  # pydicom warns about every odd element it meets; that is not under test
def test_mutated_dicom_never_crashes(seeds, caplog):
    caplog.set_level("ERROR")  # the reader logs each warning it records; thousands here would only be noise
    rng = np.random.default_rng(20240601)
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    for name, data in seeds.items():
        for k in range(MUTATIONS_PER_SEED):
            mutated = _mutate(data, rng, k % 3)
            start = time.perf_counter()
            try:
                image, meta = read_image_bytes(Path(f"fuzz-{k}-{name}"), mutated)
            except ImageReadError as exc:
                assert exc.reason and str(exc).startswith(f"fuzz-{k}-{name}: ")
                outcomes["error"] += 1
            else:
                assert image.dtype == np.float32 and image.ndim == 2 and image.shape == meta.shape
                assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
                outcomes["loaded"] += 1
            slowest = max(slowest, time.perf_counter() - start)
    print(f"fuzz: {dict(outcomes)}, slowest file {slowest:.3f} s")
    assert sum(outcomes.values()) == MUTATIONS_PER_SEED * len(seeds)
    assert outcomes["loaded"] > 20 and outcomes["error"] > 100  # both paths are exercised
    assert slowest < 2.0
