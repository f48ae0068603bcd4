import csv
import shutil
from collections import defaultdict

import pytest

from radcnn.data.layouts import load_layout, parse_boxes
from radcnn.errors import ManifestError


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def rsna_template(tmp_path_factory, fake):
    """The real 300-row stage 2 label excerpt with a tiny DICOM per patientId (written once per module)."""
    root = tmp_path_factory.mktemp("rsna_template")
    shutil.copy(fake.labels / "rsna_pneumonia_stage2_labels_sample.csv", root / "stage_2_train_labels.csv")
    for k, patient in enumerate(dict.fromkeys(r[0] for r in _rows(root / "stage_2_train_labels.csv")[1:])):
        fake.dicom(root / "stage_2_train_images" / f"{patient}.dcm", sex="MF"[k % 2], view=("PA", "AP")[k % 2])
    return root


@pytest.fixture
def rsna(tmp_path, rsna_template):
    return shutil.copytree(rsna_template, tmp_path / "rsna")


def _expected(fake):
    boxes, target = defaultdict(list), {}
    for patient, x, y, w, h, t in _rows(fake.labels / "rsna_pneumonia_stage2_labels_sample.csv")[1:]:
        target[patient] = float(t)
        if t == "1":
            boxes[patient].append([float(x), float(y), float(w), float(h)])
    return target, boxes


def test_box_rows_become_one_image_with_its_boxes(rsna, fake):
    manifest = load_layout("rsna_pneumonia", rsna)
    target, boxes = _expected(fake)
    table = manifest.table.set_index("patient_id")
    assert len(manifest) == len(target) == 242 and manifest.label_names == ("Pneumonia",)
    assert int(table["Pneumonia"].sum()) == sum(target.values())
    for patient, expected in boxes.items():
        got = [[b["x"], b["y"], b["w"], b["h"]] for b in parse_boxes(table.at[patient, "bboxes"])]
        assert got == expected
    assert table["n_boxes"].value_counts().to_dict() == {0: 242 - len(boxes), 1: 186 - (242 - len(boxes)), 2: 54, 3: 2}
    assert all(p.endswith(".dcm") for p in table["path"]) and set(table["split"]) == {"train"}


def test_header_fields_and_detailed_classes(rsna):
    (rsna / "stage_2_detailed_class_info.csv").write_text(
        "patientId,class\n0004cfab-14fd-4e49-80ba-63a80b6bddd6,No Lung Opacity / Not Normal\n"
    )
    table = load_layout("rsna_pneumonia", rsna, read_headers=True).table
    first = table.iloc[0]
    assert (first["sex"], first["age"], first["view"], first["class"]) == (
        "M",
        51.0,
        "PA",
        "No Lung Opacity / Not Normal",
    )
    assert set(table["view"]) == {"PA", "AP"}


def _append(path, *rows):
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", "2"]],
            r"row 302, column 'Target': Target '2' outside",
        ),
        ([["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", "0"]], r"row 302: duplicate row: patientId"),
        (
            [["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "1", "2", "3", "4", "1"]],
            r"row 2, column 'Target': conflicting Target",
        ),
        (
            [["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", "1"]],
            r"row 302, column 'x': Target 1 needs a numeric box",
        ),
        ([["ffff-new-patient", "", "", "", "", "0"]], r"row 302, column 'patientId': image file not found"),
    ],
)
def test_bad_rows_fail_or_are_skipped(rsna, rows, message):
    _append(rsna / "stage_2_train_labels.csv", *rows)
    with pytest.raises(ManifestError, match=message):
        load_layout("rsna_pneumonia", rsna)
    manifest = load_layout("rsna_pneumonia", rsna, on_error="skip")
    assert len(manifest.skipped) == 1
    # A conflict drops the whole patient (its labels cannot be trusted); any other bad row drops only itself.
    assert len(manifest) == (241 if "conflicting" in message else 242)
