"""Every real file of pydicom's test data and of the pydicom-data package, read with `read_image`.

Each file either loads within the contract or fails with an ImageReadError whose reason is one of the precise,
named causes below — never a foreign exception. The counts are printed (run with -s) and a minimum is asserted.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from radcnn.data.readers.dispatch import read_image
from radcnn.errors import ImageReadError

# Every failure reason must match one of these.
KNOWN_REASONS = {
    "directory": r"^is a directory",
    "empty": r"^file is empty",
    "not an image": r"^not a readable image: content matches no reader",
    "no pixel data": r"^no pixel data: ",
    "unsupported transfer syntax": r"^unsupported transfer syntax ",
    "missing attribute": r"^missing \w+, which is required to decode",
    "invalid attribute": r"^invalid \w+",
    "corrupt": r"^corrupt ",
}


def _pydicom_data_folder() -> Path:
    import data_store  # the pydicom-data package's import name

    return Path(data_store.__file__).parent


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the odd files on purpose
def test_every_test_file_loads_or_fails_precisely(pydicom_testdata, caplog):
    caplog.set_level("ERROR")
    folder = _pydicom_data_folder() / "data"
    extra = [p for p in folder.rglob("*") if p.is_file() and p.name not in pydicom_testdata]
    files = sorted({*pydicom_testdata.values(), *extra})
    assert len(files) > 200
    outcomes: Counter[str] = Counter()
    for path in files:
        try:
            image, meta = read_image(path)
        except ImageReadError as exc:
            kind = next((k for k, pattern in KNOWN_REASONS.items() if re.search(pattern, exc.reason)), None)
            assert kind is not None, f"unclassified failure for {path}: {exc.reason}"
            assert exc.path == path
            outcomes[f"failed: {kind}"] += 1
            continue
        assert image.dtype == np.float32 and image.shape == meta.shape and image.ndim == 2, path
        assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1, path
        outcomes["loaded"] += 1
    print(f"\npydicom test data: {len(files)} files: {dict(sorted(outcomes.items()))}")
    assert outcomes["loaded"] >= 150
    # Every image-bearing transfer syntax family in the data is among the loaded files.
    assert outcomes["failed: unsupported transfer syntax"] <= 5


def test_pydicom_data_images_load(pydicom_testdata):
    """The pydicom-data package's own folder: its real radiographs load (not just pydicom's small files)."""
    folder = _pydicom_data_folder()
    names = ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_J2KI.dcm", "MR2_J2KR.dcm", "693_J2KR.dcm"]
    loaded = {}
    for name in names:
        loaded[name], meta = read_image(folder / "data" / name)
        assert meta.format == "dicom" and loaded[name].shape == meta.shape
    np.testing.assert_array_equal(loaded["RG1_J2KR.dcm"], read_image(folder / "data" / "RG1_UNCR.dcm")[0])
