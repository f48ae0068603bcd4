import csv
import shutil

import numpy as np
import pytest

from radcnn.data.layouts import load_layout, parse_boxes
from radcnn.data.layouts.nih_chestxray14 import FINDINGS
from radcnn.errors import ConfigError, ManifestError


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def nih(tmp_path, fake):
    """The real 199-row Data_Entry excerpt with a stand-in PNG for every image, spread over two images* folders."""
    root = tmp_path / "NIH"
    root.mkdir()
    shutil.copy(fake.labels / "nih_chestxray14_sample.csv", root / "Data_Entry_2017_v2020.csv")
    for k, row in enumerate(_rows(root / "Data_Entry_2017_v2020.csv")[1:]):
        fake.png(root / f"images_00{1 + k % 2}" / "images" / row[0])
    return root


def _edit(path, row_number, column, value):
    rows = _rows(path)
    rows[row_number - 1][column] = value
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_labels_patients_and_metadata_from_the_real_excerpt(nih, fake):
    manifest = load_layout("nih_chestxray14", nih)
    raw = _rows(fake.labels / "nih_chestxray14_sample.csv")[1:]
    assert len(manifest) == len(raw) == 199
    assert manifest.label_names == FINDINGS
    table = manifest.table.set_index("study")
    assert table["patient_id"].nunique() == 40
    # Hand-checked rows: 00000001_001 is "Cardiomegaly|Emphysema", 00000002_000 is "No Finding".
    row = table.loc["00000001_001"]
    assert [f for f in FINDINGS if row[f] == 1] == ["Cardiomegaly", "Emphysema"] and row["No Finding"] == 0
    assert table.loc["00000002_000", list(FINDINGS)].sum() == 0 and table.loc["00000002_000", "No Finding"] == 1
    assert (row["patient_id"], row["follow_up"], row["age"], row["sex"], row["view"]) == ("1", 1.0, 58.0, "M", "PA")
    # Positives per label equal a plain count over the pipe-separated text.
    for name in FINDINGS:
        assert int(manifest.labels()[:, FINDINGS.index(name)].sum()) == sum(name in r[1].split("|") for r in raw)
    assert not np.isnan(manifest.labels()).any()
    assert set(table["split"]) == {""} and set(table["bboxes"]) == {"[]"}
    assert all(p.endswith(".png") and "/images_00" in p for p in table["path"])


def test_label_selection_and_view_filter(nih):
    manifest = load_layout("nih_chestxray14", nih, labels=("Pneumonia", "No Finding"), views="PA")
    assert manifest.labels().shape == (102, 2)
    assert set(manifest.table["view"]) == {"PA"}
    with pytest.raises(ConfigError, match="unknown label"):
        load_layout("nih_chestxray14", nih, labels=("Pneumonitis",))


def test_boxes_from_the_real_box_file_are_attached(nih, fake):
    shutil.copy(fake.labels / "nih_bbox_sample.csv", nih / "BBox_List_2017.csv")
    boxes = _rows(nih / "BBox_List_2017.csv")[1:]
    with open(nih / "Data_Entry_2017_v2020.csv", "a", newline="") as handle:
        for image, label, *_ in boxes:  # the box excerpt's images are not among the first 40 patients: add them
            patient = str(int(image.split("_")[0]))
            csv.writer(handle).writerow([image, label, 0, patient, 50, "F", "PA", 1024, 1024, 0.143, 0.143])
            fake.png(nih / "images_003" / "images" / image)
    manifest = load_layout("nih_chestxray14", nih)
    table = manifest.table.set_index("study")
    first = parse_boxes(table.loc["00013118_008", "bboxes"])
    assert first == [
        {
            "label": "Atelectasis",
            "x": 225.084745762712,
            "y": 547.019216763771,
            "w": 86.7796610169491,
            "h": 79.1864406779661,
        }
    ]
    assert sum(len(parse_boxes(b)) for b in table["bboxes"]) == len(boxes) == 60


def test_box_for_an_unlisted_image_is_reported(nih, fake):
    shutil.copy(fake.labels / "nih_bbox_sample.csv", nih / "BBox_List_2017.csv")
    with pytest.raises(ManifestError, match=r"BBox_List_2017.csv, row 2: box for image 00013118_008.png"):
        load_layout("nih_chestxray14", nih)
    manifest = load_layout("nih_chestxray14", nih, on_error="skip")
    assert len(manifest) == 199 and len(manifest.skipped) == 60


def test_official_split_lists(nih):
    images = [row[0] for row in _rows(nih / "Data_Entry_2017_v2020.csv")[1:]]
    (nih / "train_val_list.txt").write_text("\n".join(images[:150]) + "\n")
    (nih / "test_list.txt").write_text("\n".join(images[150:]) + "\n")
    table = load_layout("nih_chestxray14", nih).table
    assert (table["split"] == "train").sum() == 150 and (table["split"] == "test").sum() == 49
    (nih / "test_list.txt").write_text("\n".join(images[149:]) + "\n")
    with pytest.raises(ManifestError, match=r"test_list.txt, row 1: image .* in both"):
        load_layout("nih_chestxray14", nih)


def test_missing_image_fails_with_row_or_is_skipped(nih):
    (nih / "images_002" / "images" / "00000001_001.png").unlink()  # data row 2 → CSV row 3
    with pytest.raises(ManifestError, match=r"row 3, column 'Image Index': image file not found: 00000001_001.png"):
        load_layout("nih_chestxray14", nih)
    manifest = load_layout("nih_chestxray14", nih, on_error="skip")
    assert len(manifest) == 198
    assert manifest.skipped[0][0].endswith("Data_Entry_2017_v2020.csv row 3, column 'Image Index'")
    assert len(load_layout("nih_chestxray14", nih, check_files=False)) == 199


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, "Pneumonitis", r"row 4, column 'Finding Labels': unknown finding\(s\) \['Pneumonitis'\]"),
        (1, "No Finding|Mass", r"row 4, column 'Finding Labels': 'No Finding' together with findings"),
        (0, "00000001_000.png", r"row 4, column 'Image Index': duplicate row: image 00000001_000.png"),
        (3, " ", r"row 4, column 'Patient ID': empty Patient ID"),
    ],
)
def test_bad_rows_fail_or_are_skipped(nih, column, value, message):
    _edit(nih / "Data_Entry_2017_v2020.csv", 4, column, value)
    with pytest.raises(ManifestError, match=message):
        load_layout("nih_chestxray14", nih)
    manifest = load_layout("nih_chestxray14", nih, on_error="skip")
    assert len(manifest) == 198 and len(manifest.skipped) == 1 and "row 4" in manifest.skipped[0][0]


def test_the_2017_file_format_age_suffix(nih):
    entry = nih / "Data_Entry_2017_v2020.csv"
    _edit(entry, 2, 4, "057Y")
    entry.rename(nih / "Data_Entry_2017.csv")
    table = load_layout("nih_chestxray14", nih).table
    assert table.loc[table["study"] == "00000001_000", "age"].item() == 57.0
