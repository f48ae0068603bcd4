import csv
import shutil

import numpy as np
import pytest

from radcnn.data.layouts import load_layout
from radcnn.data.layouts.chexpert import OBSERVATIONS
from radcnn.errors import ConfigError, ManifestError

VALID_ROWS = [
    "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,"
    + ",".join(["0.0"] * 13 + ["1.0"]),
    "CheXpert-v1.0-small/valid/patient64542/study1/view2_lateral.jpg,Male,70,Lateral,,"
    + ",".join(["1.0"] + ["0.0"] * 13),
]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def chexpert(tmp_path, fake):
    """The real 150-row train.csv excerpt plus two valid rows, with a stand-in JPEG for every image. The folder
    is deliberately not called CheXpert-v1.0-small: the CSV's first path component is replaced by it."""
    root = tmp_path / "chexpert_small"
    root.mkdir()
    shutil.copy(fake.labels / "chexpert_train_sample.csv", root / "train.csv")
    header = _rows(root / "train.csv")[0]
    (root / "valid.csv").write_text(",".join(header) + "\n" + "\n".join(VALID_ROWS) + "\n")
    for name in ("train.csv", "valid.csv"):
        for row in _rows(root / name)[1:]:
            fake.jpeg(root.joinpath(*row[0].split("/")[1:]))
    return root


def _raw(fake):
    rows = _rows(fake.labels / "chexpert_train_sample.csv")
    return rows[0], rows[1:]


def test_rows_patients_splits_and_paths(chexpert, fake):
    manifest = load_layout("chexpert", chexpert)
    header, raw = _raw(fake)
    table = manifest.table
    assert len(manifest) == 152 and manifest.label_names == OBSERVATIONS
    assert table.groupby("split").size().to_dict() == {"train": 150, "val": 2}
    patients = {r[0].split("/")[2] for r in raw} | {"patient64541", "patient64542"}
    assert set(table["patient_id"]) == patients
    first = table.iloc[0]
    assert first["path"] == str((chexpert / "train/patient00001/study1/view1_frontal.jpg").resolve())
    assert (first["study"], first["view"], first["projection"], first["sex"], first["age"]) == (
        "patient00001/study1",
        "Frontal",
        "AP",
        "Female",
        68.0,
    )


@pytest.mark.parametrize(
    ("uncertainty", "blank", "cardiomegaly", "no_finding"),
    [
        ("ignore", "nan", np.nan, np.nan),
        ("ones", "nan", 1.0, np.nan),
        ("zeros", "nan", 0.0, np.nan),
        ("ignore", "zeros", np.nan, 0.0),  # an uncertain label stays unknown even when blanks become 0
        ("ones", "zeros", 1.0, 0.0),
    ],
)
def test_uncertainty_and_blank_policies(chexpert, uncertainty, blank, cardiomegaly, no_finding):
    # CSV row 3: patient00002/study2 — Cardiomegaly -1.0, No Finding blank, Lung Opacity 1.0, Pneumothorax blank.
    manifest = load_layout("chexpert", chexpert, uncertainty=uncertainty, blank=blank)
    row = manifest.table.iloc[1]
    assert row["study"] == "patient00002/study2"
    np.testing.assert_equal(row["Cardiomegaly"], cardiomegaly)
    np.testing.assert_equal(row["No Finding"], no_finding)
    assert row["Lung Opacity"] == 1.0


def test_positive_counts_match_the_raw_file(chexpert, fake):
    header, raw = _raw(fake)
    ones = load_layout("chexpert", chexpert, uncertainty="ones").labels()[:150]
    ignore = load_layout("chexpert", chexpert, uncertainty="ignore", blank="zeros").labels()[:150]
    for j, name in enumerate(OBSERVATIONS):
        column = header.index(name)
        assert np.nansum(ones[:, j]) == sum(r[column] in ("1.0", "-1.0") for r in raw)
        assert np.isnan(ignore[:, j]).sum() == sum(r[column] == "-1.0" for r in raw)


def test_view_filter_and_label_subset(chexpert):
    frontal = load_layout("chexpert", chexpert, views="frontal", labels=("Edema", "Pleural Effusion"))
    assert len(frontal) == 108 + 1 and set(frontal.table["view"]) == {"Frontal"}
    assert frontal.labels().shape == (109, 2)
    assert len(load_layout("chexpert", chexpert, views="lateral")) == 42 + 1
    with pytest.raises(ConfigError, match="uncertainty must be one of ones, zeros, ignore"):
        load_layout("chexpert", chexpert, uncertainty="maybe")


def test_a_single_csv_file_can_be_given(chexpert):
    manifest = load_layout("chexpert", chexpert / "valid.csv")
    assert len(manifest) == 2 and set(manifest.table["split"]) == {"val"}


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("Edema", "2.0", r"train.csv, row 5, column 'Edema': label value '2.0' outside the allowed set"),
        ("Path", "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg", r"row 5, column 'Path': duplicate"),
        ("Path", "CheXpert-v1.0-small/train/unknown/view1.jpg", r"row 5, column 'Path': cannot find patientNNNNN"),
        ("Path", "CheXpert-v1.0-small/train/patient99999/study1/view1_frontal.jpg", "image file not found"),
    ],
)
def test_bad_rows_fail_or_are_skipped(chexpert, column, value, message):
    rows = _rows(chexpert / "train.csv")
    rows[4][rows[0].index(column)] = value  # CSV row 5
    with open(chexpert / "train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ManifestError, match=message):
        load_layout("chexpert", chexpert)
    manifest = load_layout("chexpert", chexpert, on_error="skip")
    assert len(manifest) == 151 and len(manifest.skipped) == 1 and "train.csv row 5" in manifest.skipped[0][0]
