import shutil

import pytest

from radcnn.data.layouts import LAYOUTS, detect_layout, layout_card, layout_options, load_layout
from radcnn.data.manifest import Manifest
from radcnn.errors import ConfigError, DataError, UnknownNameError

EXPECTED = ["chexpert", "csv", "dicom_folder", "folder_per_class", "medmnist", "nih_chestxray14", "rsna_pneumonia"]


def test_all_layouts_are_registered():
    assert LAYOUTS.names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_every_layout_has_a_dataset_card_and_the_common_options(name):
    card = layout_card(name)
    for section in ("Source:", "Size:", "Labels:", "Licence:", "Citation:", "Layout::"):
        assert section in card, f"{name}: dataset card lacks {section}"
    options = layout_options(name)
    assert options[:2] == ["on_error", "check_files"]
    assert LAYOUTS.get(name).info.summary


def _trees(root, fake):
    """One minimal instance of every layout, keyed by the layout detection must report."""
    trees = {}
    nih = root / "nih"
    nih.mkdir()
    shutil.copy(fake.labels / "nih_chestxray14_sample.csv", nih / "Data_Entry_2017_v2020.csv")
    trees["nih_chestxray14"] = nih
    chexpert = root / "chexpert"
    chexpert.mkdir()
    shutil.copy(fake.labels / "chexpert_train_sample.csv", chexpert / "train.csv")
    trees["chexpert"] = chexpert
    rsna = root / "rsna"
    rsna.mkdir()
    shutil.copy(fake.labels / "rsna_pneumonia_stage2_labels_sample.csv", rsna / "stage_2_train_labels.csv")
    trees["rsna_pneumonia"] = rsna
    trees["medmnist"] = fake.labels.parent / "pneumoniamnist_dev.npz"
    fake.png(root / "own" / "images" / "a.png")
    (root / "own" / "labels.csv").write_text("path,patient_id,nodule\nimages/a.png,P1,1\n")
    trees["csv"] = root / "own"  # a folder with one labels CSV, images below it: not folder_per_class
    fake.png(root / "classes" / "NORMAL" / "x.png")
    trees["folder_per_class"] = root / "classes"
    fake.dicom(root / "export" / "PX01" / "20240101" / "1.2.3" / "IM0001")  # a PACS export: no suffixes, nested
    trees["dicom_folder"] = root / "export"
    return trees


def test_detection_from_folder_contents(tmp_path, fake):
    for expected, path in _trees(tmp_path, fake).items():
        assert detect_layout(path) == expected, path
    assert detect_layout(tmp_path / "nih" / "Data_Entry_2017_v2020.csv") == "nih_chestxray14"
    assert detect_layout(tmp_path / "chexpert" / "train.csv") == "chexpert"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset layout .* pass one of: chexpert, csv"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        detect_layout(tmp_path / "absent")


def test_load_layout_auto_unknown_names_and_options(tmp_path, fake):
    trees = _trees(tmp_path, fake)
    manifest = load_layout("auto", trees["csv"])
    assert isinstance(manifest, Manifest) and manifest.label_names == ("nodule",)
    with pytest.raises(UnknownNameError, match="unknown dataset layout 'kaggle'; valid names: chexpert"):
        load_layout("kaggle", trees["csv"])
    with pytest.raises(ConfigError, match="layout 'chexpert' has no option\\(s\\) uncertain; valid: on_error"):
        load_layout("chexpert", trees["chexpert"], uncertain="ones")
    with pytest.raises(ConfigError, match="on_error must be 'fail' or 'skip'"):
        load_layout("folder_per_class", trees["folder_per_class"], on_error="ignore")
