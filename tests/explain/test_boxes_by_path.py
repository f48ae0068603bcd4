"""`boxes_by_path` finds a run's lesion boxes whether its data.source is the labels CSV or the folder holding it."""

from __future__ import annotations

from radcnn.explain.runs import boxes_by_path


def _write_labels(folder):
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text(
        "path,patient_id,nodule,boxes\n"
        'images/a.png,P1,1,"[{""label"":""nodule"",""x0"":2,""y0"":3,""x1"":6,""y1"":9}]"\n'
        "images/b.png,P2,0,[]\n",
        encoding="utf-8",
    )


def test_the_folder_and_its_labels_csv_give_the_same_boxes(tmp_path):
    _write_labels(tmp_path / "data")
    from_csv = boxes_by_path(tmp_path / "data" / "labels.csv")
    from_folder = boxes_by_path(tmp_path / "data")  # `radcnn train --data data/` records the folder
    assert from_folder == from_csv
    box = from_folder[str((tmp_path / "data" / "images" / "a.png").resolve())]
    assert [(b.x0, b.y0, b.x1, b.y1) for b in box] == [(2, 3, 6, 9)]
    assert from_folder[str((tmp_path / "data" / "images" / "b.png").resolve())] == []


def test_a_folder_without_a_labels_csv_has_no_boxes(tmp_path):
    (tmp_path / "images").mkdir()
    assert boxes_by_path(tmp_path) == {}
