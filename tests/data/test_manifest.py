import numpy as np
import pytest

from radcnn.data.manifest import read_labels_csv
from radcnn.errors import ManifestError


@pytest.fixture
def tree(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def _write(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def test_reads_paths_patients_labels_and_metadata(tree):
    csv = _write(tree, "path,patient_id,nodule,site\na.png,p1,1,s1\nb.png,p1,0,s1\nc.png,p2,,s2\n")
    manifest = read_labels_csv(csv, ["nodule"])
    assert len(manifest) == 3
    assert manifest.paths[0] == (tree / "a.png").resolve()
    labels = manifest.labels()
    assert labels.shape == (3, 1) and labels[0, 0] == 1 and labels[1, 0] == 0 and np.isnan(labels[2, 0])
    assert list(manifest.table["site"]) == ["s1", "s1", "s2"]


def test_missing_column_is_named(tree):
    csv = _write(tree, "path,nodule\na.png,1\n")
    with pytest.raises(ManifestError, match=r"labels\.csv, column 'patient_id': missing column"):
        read_labels_csv(csv, ["nodule"])


def test_unknown_label_names_row_and_column(tree):
    csv = _write(tree, "path,patient_id,nodule\na.png,p1,1\nb.png,p2,maybe\n")
    with pytest.raises(ManifestError, match=r"row 3, column 'nodule': unknown label value 'maybe'"):
        read_labels_csv(csv, ["nodule"])


def test_missing_image_fails_or_is_skipped_and_reported(tree):
    csv = _write(tree, "path,patient_id,nodule\na.png,p1,1\nnope.png,p2,0\n")
    with pytest.raises(ManifestError, match=r"row 3, column 'path': image file not found"):
        read_labels_csv(csv, ["nodule"])
    manifest = read_labels_csv(csv, ["nodule"], on_error="skip")
    assert len(manifest) == 1 and len(manifest.skipped) == 1 and "row 3" in manifest.skipped[0][0]


def test_duplicate_rows_and_empty_tables_are_errors(tree):
    with pytest.raises(ManifestError, match="duplicate row"):
        read_labels_csv(_write(tree, "path,patient_id,nodule\na.png,p1,1\na.png,p1,1\n"), ["nodule"])
    with pytest.raises(ManifestError, match="no rows"):
        read_labels_csv(_write(tree, "path,patient_id,nodule\n"), ["nodule"])
    with pytest.raises(ManifestError, match="not found"):
        read_labels_csv(tree / "absent.csv", ["nodule"])
    with pytest.raises(ManifestError, match="row 2, column 'patient_id': empty"):
        read_labels_csv(_write(tree, "path,patient_id,nodule\na.png,,1\n"), ["nodule"])
