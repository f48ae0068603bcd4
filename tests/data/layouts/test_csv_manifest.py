import numpy as np
import pytest

from radcnn.data.layouts import load_layout, summarize_skipped, write_skipped_csv
from radcnn.errors import ConfigError, ManifestError


@pytest.fixture
def tree(tmp_path, fake):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        fake.png(tmp_path / "img" / name)
    return tmp_path


def _csv(root, text, name="labels.csv"):
    path = root / name
    path.write_text(text)
    return path


def test_configurable_columns_multi_label_and_site(tree):
    csv = _csv(
        tree,
        "Image,PatientID,Hospital,nodule,effusion,note\n"
        "img/a.png,P1,north,1,0,x\nimg/b.png,P1,north,0,,y\nimg/c.png,P2,south,,1,z\n",
    )
    manifest = load_layout(
        "csv",
        csv,
        path_column="Image",
        patient_column="PatientID",
        site_column="Hospital",
        label_columns="nodule,effusion",
    )
    assert manifest.label_names == ("nodule", "effusion")
    np.testing.assert_array_equal(manifest.labels(), [[1, 0], [0, np.nan], [np.nan, 1]])
    assert list(manifest.table["site"]) == ["north", "north", "south"]
    assert list(manifest.table["patient_id"]) == ["P1", "P1", "P2"]
    assert manifest.paths[2] == (tree / "img" / "c.png").resolve()
    assert list(manifest.table["note"]) == ["x", "y", "z"]  # other columns stay as metadata


def test_label_columns_are_inferred_and_patients_may_be_absent(tree):
    csv = _csv(tree, "path,nodule,mass,comment\nimg/a.png,1,true,a\nimg/b.png,0,,b\n")
    manifest = load_layout("csv", csv, patient_column=None)
    assert manifest.label_names == ("nodule", "mass")
    assert list(manifest.table["patient_id"]) == ["img/a.png", "img/b.png"]  # one patient per image
    with pytest.raises(ManifestError, match="none hold only 0/1/blank values"):
        load_layout("csv", _csv(tree, "path,patient_id,comment\nimg/a.png,P1,a\n", "other.csv"))


def test_every_kind_of_bad_row_fails_with_its_row_or_is_skipped(tree, tmp_path):
    csv = _csv(
        tree,
        "path,patient_id,nodule\n"
        "img/a.png,P1,1\n"  # row 2: fine
        "img/b.png,P2,maybe\n"  # row 3: label outside the allowed set
        "img/a.png,P1,1\n"  # row 4: duplicate
        "img/missing.png,P3,0\n"  # row 5: missing file
        "img/c.png,,0\n"  # row 6: empty patient id
        "img/d.png,P4,0\n",  # row 7: fine
    )
    with pytest.raises(ManifestError, match=r"labels.csv, row 3, column 'nodule': unknown label value 'maybe'"):
        load_layout("csv", csv, label_columns=("nodule",))
    manifest = load_layout("csv", csv, label_columns=("nodule",), on_error="skip")
    assert [p.name for p in manifest.paths] == ["a.png", "d.png"]
    reasons = dict(manifest.skipped)
    assert reasons[f"{csv} row 3, column 'nodule'"].startswith("unknown label value 'maybe'")
    assert reasons[f"{csv} row 4"].startswith("duplicate row: image")
    assert reasons[f"{csv} row 5, column 'path'"].startswith("image file not found")
    assert reasons[f"{csv} row 6, column 'patient_id'"] == "empty patient_id"
    assert summarize_skipped(manifest) == {
        "unknown label value 'maybe'; expected 0, 1 or blank (unknown)": 1,
        "duplicate row": 1,
        "image file not found": 1,
        "empty patient_id": 1,
    }
    out = tmp_path / "run" / "skipped.csv"
    assert write_skipped_csv(manifest, out) == 4
    lines = out.read_text().splitlines()
    assert lines[0] == "what,why" and len(lines) == 5


def test_a_folder_with_one_csv_is_accepted(tree):
    _csv(tree, "path,patient_id,nodule\nimg/a.png,P1,1\n")
    assert len(load_layout("csv", tree)) == 1
    _csv(tree, "path,patient_id,nodule\nimg/b.png,P1,1\n", "second.csv")
    with pytest.raises(ConfigError, match=r"several labels files \(labels.csv, second.csv\)"):
        load_layout("csv", tree)
