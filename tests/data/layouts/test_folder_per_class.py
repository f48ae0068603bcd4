import shutil

import numpy as np
import pytest

from radcnn.data.layouts import load_layout, summarize_skipped
from radcnn.data.layouts.folder_per_class import patient_from_name
from radcnn.errors import ConfigError, DataError, ManifestError

# A miniature Kaggle "Chest X-Ray Images (Pneumonia)" tree: (split, class, file name).
KAGGLE = [
    ("train", "NORMAL", "IM-0115-0001.jpeg"),
    ("train", "NORMAL", "IM-0115-0002.jpeg"),
    ("train", "NORMAL", "NORMAL2-IM-0123-0001.jpeg"),
    ("train", "NORMAL", "IM-0117-0001.jpeg"),
    ("train", "NORMAL", "IM-0119-0001.jpeg"),
    ("train", "PNEUMONIA", "person1_bacteria_1.jpeg"),
    ("train", "PNEUMONIA", "person1_virus_6.jpeg"),
    ("train", "PNEUMONIA", "person2_bacteria_3.jpeg"),
    ("train", "PNEUMONIA", "person3_virus_7.jpeg"),
    ("train", "PNEUMONIA", "person4_bacteria_9.jpeg"),
    ("train", "PNEUMONIA", "person5_bacteria_11.jpeg"),
    ("val", "NORMAL", "NORMAL2-IM-1427-0001.jpeg"),
    ("val", "PNEUMONIA", "person1946_bacteria_4874.jpeg"),
    ("test", "NORMAL", "IM-0001-0001.jpeg"),
    ("test", "PNEUMONIA", "person100_bacteria_475.jpeg"),
    ("test", "PNEUMONIA", "person100_bacteria_477.jpeg"),
]


@pytest.fixture
def kaggle(tmp_path, fake):
    root = tmp_path / "chest_xray"
    for split, cls, name in KAGGLE:
        fake.jpeg(root / split / cls / name)
    # The archive's nested duplicate copy and macOS metadata.
    shutil.copytree(root / "train", root / "chest_xray" / "train")
    shutil.copytree(root / "test", root / "chest_xray" / "test")
    (root / "__MACOSX" / "chest_xray" / "train" / "NORMAL").mkdir(parents=True)
    (root / "__MACOSX" / "chest_xray" / "train" / "NORMAL" / "._IM-0115-0001.jpeg").write_bytes(b"\x00\x05\x16\x07")
    (root / "train" / "NORMAL" / ".DS_Store").write_bytes(b"junk")
    return root


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person1_bacteria_1.jpeg", "person1"),
        ("person1_virus_6.jpeg", "person1"),
        ("person1946_bacteria_4874.jpeg", "person1946"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-0123-0001.jpeg", "NORMAL2-IM-0123"),
        ("scan_17.png", None),
    ],
)
def test_patient_ids_from_kaggle_file_names(name, patient):
    assert patient_from_name(name) == patient


def test_kaggle_tree_labels_splits_patients(kaggle):
    manifest = load_layout("folder_per_class", kaggle)
    table = manifest.table
    assert len(manifest) == len(KAGGLE)
    assert manifest.label_names == ("PNEUMONIA",)  # NORMAL is the all-zero class
    assert table.groupby("split").size().to_dict() == {"test": 3, "train": 11, "val": 2}
    pneumonia = dict(zip(table["path"].map(lambda p: p.rsplit("/", 1)[1]), table["PNEUMONIA"], strict=True))
    assert pneumonia["person1_virus_6.jpeg"] == 1.0 and pneumonia["IM-0115-0002.jpeg"] == 0.0
    by_name = dict(zip(table["path"].map(lambda p: p.rsplit("/", 1)[1]), table["patient_id"], strict=True))
    assert by_name["person1_bacteria_1.jpeg"] == by_name["person1_virus_6.jpeg"] == "person1"
    assert by_name["IM-0115-0002.jpeg"] == "IM-0115"
    assert by_name["NORMAL2-IM-0123-0001.jpeg"] == "NORMAL2-IM-0123"
    assert table["patient_id"].nunique() == 13
    assert all(p.startswith(str(kaggle.resolve())) for p in table["path"])
    assert not any("/chest_xray/chest_xray/" in p for p in table["path"])  # the nested copy is gone


def test_nested_copy_and_macosx_are_dropped_with_a_report(kaggle):
    manifest = load_layout("folder_per_class", kaggle)
    summary = summarize_skipped(manifest)
    # 11 train + 3 test files duplicated in chest_xray/chest_xray, one AppleDouble file.
    assert summary == {"duplicate copy": 14, "macOS archive metadata (__MACOSX)": 1}
    what, why = next(item for item in manifest.skipped if "IM-0115-0001" in item[0] and "duplicate" in item[1])
    assert "/chest_xray/chest_xray/train/NORMAL/" in what and str(kaggle.resolve() / "train" / "NORMAL") in why


def test_same_image_under_another_name_is_a_reported_duplicate(kaggle):
    shutil.copy(kaggle / "train/NORMAL/IM-0117-0001.jpeg", kaggle / "train/NORMAL/IM-0999-0001.jpeg")
    manifest = load_layout("folder_per_class", kaggle)
    assert len(manifest) == len(KAGGLE)
    assert summarize_skipped(manifest)["duplicate image"] == 1


def test_identical_image_in_two_classes_fails_or_is_skipped(kaggle):
    shutil.copy(kaggle / "train/NORMAL/IM-0117-0001.jpeg", kaggle / "train/PNEUMONIA/person9_bacteria_1.jpeg")
    with pytest.raises(ManifestError, match="identical image in class folders NORMAL and PNEUMONIA"):
        load_layout("folder_per_class", kaggle)
    manifest = load_layout("folder_per_class", kaggle, on_error="skip")
    assert len(manifest) == len(KAGGLE) - 1  # every copy left out: the two originals and the nested copy
    assert summarize_skipped(manifest)["identical image in class folders NORMAL and PNEUMONIA"] == 3


def test_dedupe_can_be_turned_off(kaggle):
    manifest = load_layout("folder_per_class", kaggle, dedupe=False)
    assert len(manifest) == len(KAGGLE) + 14
    assert "sha256" not in manifest.table.columns


def test_resplit_val_at_patient_level(kaggle):
    manifest = load_layout("folder_per_class", kaggle, resplit_val=True, val_fraction=0.3, seed=1)
    table = manifest.table
    assert (table["official_split"] == "val").sum() == 2
    assert set(table.loc[table["official_split"] == "test", "split"]) == {"test"}
    new_val = table[table["split"] == "val"]
    assert 3 <= len(new_val) <= 7
    assert table.groupby("patient_id")["split"].nunique().max() == 1  # person1's two images stay together
    again = load_layout("folder_per_class", kaggle, resplit_val=True, val_fraction=0.3, seed=1)
    assert list(again.table["split"]) == list(table["split"])


def test_generic_tree_without_splits_and_one_column_per_class(tmp_path, fake):
    for cls in ("covid", "normal", "viral"):
        for k in range(3):
            fake.png(tmp_path / cls / f"{cls}_{k}.png")
    manifest = load_layout("folder_per_class", tmp_path)
    assert manifest.label_names == ("covid", "viral")
    one_hot = load_layout("folder_per_class", tmp_path, negative_class=None)
    assert one_hot.label_names == ("covid", "normal", "viral")
    labels = one_hot.labels()
    assert labels.shape == (9, 3) and np.all(labels.sum(axis=1) == 1)
    assert set(one_hot.table["split"]) == {""}
    assert one_hot.table["patient_id"].nunique() == 9  # unknown names: one patient per image
    custom = load_layout("folder_per_class", tmp_path, patient_pattern=r"^([a-z]+)_\d")
    assert custom.table["patient_id"].nunique() == 3


def test_bad_trees_are_named(tmp_path, fake):
    fake.png(tmp_path / "train" / "loose.png")
    with pytest.raises(ManifestError, match="loose.png: image is not inside a class folder"):
        load_layout("folder_per_class", tmp_path)
    with pytest.raises(DataError, match="no images found"):
        load_layout("folder_per_class", tmp_path, on_error="skip")
    fake.png(tmp_path / "train" / "A" / "a.png")
    with pytest.raises(ConfigError, match="negative_class 'B' is not a class folder"):
        load_layout("folder_per_class", tmp_path, on_error="skip", negative_class="B")
    with pytest.raises(ConfigError, match="capture group"):
        load_layout("folder_per_class", tmp_path, on_error="skip", patient_pattern="x")
    with pytest.raises(ConfigError, match="not a regular expression"):
        load_layout("folder_per_class", tmp_path, on_error="skip", patient_pattern="(x")
