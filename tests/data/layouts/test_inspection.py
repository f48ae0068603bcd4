import numpy as np
import pandas as pd

from radcnn.data.layouts import inspect_dataset
from radcnn.data.layouts.inspection import count_table
from radcnn.data.manifest import Manifest


def test_count_table_by_hand():
    table = pd.DataFrame(
        {
            "path": list("abcde"),
            "patient_id": ["P1", "P1", "P2", "P3", "P3"],
            "x": [1.0, 0.0, np.nan, 1.0, 1.0],
            "y": [0.0, 0.0, 0.0, 1.0, 0.0],
            "split": ["train", "train", "test", "train", "train"],
        }
    )
    counts = count_table(Manifest(table, ("x", "y"))).set_index("split")
    assert counts.index.tolist() == ["train", "test", "all"]
    assert counts.loc["train"].to_dict() == {"images": 4, "patients": 2, "x": 3, "x unknown": 0, "y": 1}
    assert counts.loc["test"].to_dict() == {"images": 1, "patients": 1, "x": 0, "x unknown": 1, "y": 0}
    assert counts.loc["all", "x unknown"] == 1 and "y unknown" not in counts.columns


def test_inspect_reports_sizes_unreadable_files_and_split_leaks(tmp_path, fake):
    for split, name in [
        ("train", "person1_bacteria_1.png"),
        ("test", "person1_virus_2.png"),
        ("test", "IM-0001-0001.png"),
    ]:
        fake.png(tmp_path / split / ("PNEUMONIA" if "person" in name else "NORMAL") / name, size=10)
    fake.png(tmp_path / "train" / "NORMAL" / "IM-0002-0001.png").write_bytes(b"not an image")
    report = inspect_dataset(tmp_path, sample=10)
    assert report.layout == "folder_per_class" and report.sampled == 4
    assert report.image_sizes == {(10, 10): 3}
    assert len(report.read_failures) == 1 and "IM-0002-0001.png" in report.read_failures[0][0]
    assert report.problems == [(f"{tmp_path} official split", "patients in more than one split: 1 (person1)")]
    assert report.problem_summary == {"unreadable image": 1, "patients in more than one split": 1}
