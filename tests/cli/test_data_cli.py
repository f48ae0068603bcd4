import hashlib
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from radcnn.cli.app import main
from radcnn.cli.data import parse_option
from radcnn.errors import ConfigError

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"


def _png(path: Path, size: int = 12) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)


@pytest.fixture
def kaggle(tmp_path):
    root = tmp_path / "chest_xray"
    for split, cls, name in [
        ("train", "NORMAL", "IM-0115-0001.png"),
        ("train", "PNEUMONIA", "person1_bacteria_1.png"),
        ("train", "PNEUMONIA", "person1_virus_6.png"),
        ("test", "NORMAL", "IM-0001-0001.png"),
        ("test", "PNEUMONIA", "person1_bacteria_2.png"),  # person1 again: a leak in the official split
    ]:
        _png(root / split / cls / name)
    shutil.copytree(root / "train", root / "chest_xray" / "train")
    (root / "test" / "NORMAL" / "IM-0002-0001.png").write_bytes(b"")  # unreadable
    return root


def test_layouts_lists_every_layout(capsys):
    assert main(["data", "layouts"]) == 0
    out = capsys.readouterr().out
    for name in ("chexpert", "csv", "folder_per_class", "medmnist", "nih_chestxray14", "rsna_pneumonia"):
        assert name in out
    assert "root/[split/]CLASS" in out  # markup characters are shown, not swallowed


def test_inspect_reports_layout_counts_sizes_and_problems(kaggle, tmp_path, capsys):
    skipped = tmp_path / "skipped.csv"
    code = main(["data", "inspect", str(kaggle), "--sample", "10", "--skipped-csv", str(skipped)])
    out = " ".join(capsys.readouterr().out.split())  # Rich wraps at the terminal width
    assert code == 0
    assert "folder_per_class" in out and "PNEUMONIA" in out
    assert "12×12: 5" in out  # five readable images; the empty file is a problem
    assert "duplicate copy: 3" in out
    assert "patients in more than one split: 1" in out and "(person1)" in out
    assert "unreadable image: 1" in out and "file is empty" in out
    assert skipped.read_text().count("\n") == 1 + 5


def test_inspect_a_medmnist_file_with_an_explicit_layout(capsys):
    npz = SHARED / "pneumoniamnist_dev.npz"
    assert main(["data", "inspect", str(npz), "--layout", "medmnist"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3282" in out and "524" in out and "28×28: 16" in out and "no problems found" in out


def test_inspect_fail_mode_and_options_reach_the_loader(kaggle, capsys):
    assert main(["data", "inspect", str(kaggle), "--on-error", "fail", "--option", "negative_class=none"]) == 0
    out = capsys.readouterr().out
    assert "NORMAL, PNEUMONIA" in out  # one column per class
    assert main(["data", "inspect", str(kaggle), "--option", "no_such=1"]) == 1
    assert "layout 'folder_per_class' has no option(s) no_such" in " ".join(capsys.readouterr().err.split())
    assert main(["data", "inspect", str(kaggle / "absent")]) == 1


def test_download_verifies_against_a_given_checksum(tmp_path, capsys):
    npz = (SHARED / "pneumoniamnist_dev.npz").resolve()
    md5 = hashlib.md5(npz.read_bytes()).hexdigest()
    out_dir = tmp_path / "data"
    argv = ["data", "download", "pneumoniamnist", "--out", str(out_dir), "--url", npz.as_uri()]
    assert main([*argv, "--md5", md5]) == 0
    assert (out_dir / "pneumoniamnist.npz").read_bytes() == npz.read_bytes()
    (out_dir / "pneumoniamnist.npz").unlink()
    assert main(argv) == 1  # the excerpt does not have the official checksum
    assert "does not match the expected" in " ".join(capsys.readouterr().err.split())
    assert not (out_dir / "pneumoniamnist.npz").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resplit_val=true", ("resplit_val", True)),
        ("negative_class=None", ("negative_class", None)),
        ("val_fraction=0.2", ("val_fraction", 0.2)),
        ("seed=3", ("seed", 3)),
        ("labels=Edema,Pleural Effusion", ("labels", ("Edema", "Pleural Effusion"))),
        ("views=frontal", ("views", "frontal")),
    ],
)
def test_parse_option(text, expected):
    assert parse_option(text) == expected


def test_parse_option_needs_key_and_value():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_option("resplit_val")
