import hashlib
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from radcnn.data.layouts import load_layout
from radcnn.data.layouts.medmnist import hash_pseudo_paths, parse_pseudo_path
from radcnn.data.layouts.medmnist_download import (
    MEDMNIST_2D,
    DownloadError,
    download_medmnist,
    file_md5,
    medmnist_file_name,
    medmnist_url,
)
from radcnn.errors import ConfigError, DataError, ManifestError, UnknownNameError


@pytest.fixture
def dev_npz(fake):
    return (fake.labels.parent / "pneumoniamnist_dev.npz").resolve()


def _npz(path: Path, labels: dict[str, np.ndarray], size: int = 4) -> Path:
    arrays = {}
    for split, values in labels.items():
        arrays[f"{split}_images"] = np.random.default_rng(0).integers(0, 256, (len(values), size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = values
    np.savez(path, **arrays)
    return path


def test_real_pneumoniamnist_excerpt(dev_npz):
    manifest = load_layout("medmnist", dev_npz)
    with np.load(dev_npz) as archive:
        expected = {s: archive[f"{s}_labels"] for s in ("train", "val", "test")}
    assert manifest.label_names == ("pneumonia",)
    assert manifest.table.groupby("split").size().to_dict() == {"test": 600, "train": 3282, "val": 524}
    labels = manifest.labels()
    assert labels.shape == (4406, 1)
    np.testing.assert_array_equal(labels[:3282, 0], expected["train"][:, 0])
    assert manifest.table["patient_id"].is_unique
    assert parse_pseudo_path(manifest.table["path"].iloc[3282]) == (dev_npz, "val", 0)
    assert set(manifest.table["dataset"]) == {"pneumoniamnist"}


def test_chestmnist_is_multi_label_with_the_official_names(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (10, 14)).astype(np.uint8)
    manifest = load_layout("medmnist", _npz(tmp_path / "chestmnist_64.npz", {"train": labels, "test": labels[:3]}))
    assert manifest.label_names == MEDMNIST_2D["chestmnist"].labels and len(manifest.label_names) == 14
    np.testing.assert_array_equal(manifest.labels()[:10], labels)


def test_multi_class_becomes_one_hot_and_bad_indices_are_reported(tmp_path):
    labels = np.array([[0], [7], [3], [9]], dtype=np.uint8)  # bloodmnist has 8 classes: 9 is out of range
    path = _npz(tmp_path / "bloodmnist.npz", {"train": labels})
    with pytest.raises(ManifestError, match=r"bloodmnist.npz:train\[3\]: class index \[9\] outside 0…7"):
        load_layout("medmnist", path)
    manifest = load_layout("medmnist", path, on_error="skip")
    assert manifest.labels().shape == (3, 8)
    np.testing.assert_array_equal(manifest.labels().argmax(axis=1), [0, 7, 3])
    assert manifest.labels().sum() == 3 and len(manifest.skipped) == 1


def test_unknown_file_names_get_generic_labels_and_bad_binary_values_are_reported(tmp_path):
    # Class indices beyond 1 in a file radcnn does not know: one multi-class "label" column (training agrees).
    indices = load_layout("medmnist", _npz(tmp_path / "classes.npz", {"train": np.array([[0], [1], [2]])}))
    assert indices.label_names == ("label",) and indices.labels()[:, 0].tolist() == [0, 1, 2]
    path = _npz(tmp_path / "mine.npz", {"train": np.array([[0], [1], [-1]])})
    with pytest.raises(ManifestError, match=r"mine.npz:train\[2\]: label \[-1\] outside the allowed set 0, 1"):
        load_layout("medmnist", path)
    manifest = load_layout("medmnist", path, on_error="skip")
    assert manifest.label_names == ("label",) and len(manifest) == 2
    assert load_layout("medmnist", path, on_error="skip", dataset="pneumoniamnist").label_names == ("pneumonia",)
    np.savez(tmp_path / "broken.npz", train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.zeros((2, 1)))
    with pytest.raises(DataError, match="3 images but train_labels has 2 rows"):
        load_layout("medmnist", tmp_path / "broken.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_layout("medmnist", tmp_path / "junk.npz")


def test_content_hash_of_pseudo_paths_follows_the_pixels(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    images = np.stack([np.full((4, 4), v, np.uint8) for v in (1, 2, 1)])
    np.savez(path, train_images=images, train_labels=np.array([[0], [1], [0]]))
    digests = hash_pseudo_paths([f"{path}:train[{i}]" for i in range(3)])
    assert digests[0] == digests[2] != digests[1]
    with pytest.raises(ManifestError, match=r"no image train\[5\]"):
        hash_pseudo_paths([f"{path}:train[5]"])


# --- download: never the network; file:// URLs and a fake opener ---------------------------------------------


def test_official_urls_and_checksum_table():
    assert medmnist_url("pneumoniamnist", 224) == (
        "https://zenodo.org/records/10519652/files/pneumoniamnist_224.npz?download=1"
    )
    assert medmnist_file_name("chestmnist") == "chestmnist.npz"
    assert MEDMNIST_2D["pneumoniamnist"].md5[28] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert len(MEDMNIST_2D) == 12
    assert all(set(info.md5) == {28, 64, 128, 224} for info in MEDMNIST_2D.values())
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for info in MEDMNIST_2D.values() for md5 in info.md5.values())
    with pytest.raises(UnknownNameError, match="valid names: bloodmnist"):
        medmnist_url("organmnist3d")
    with pytest.raises(ConfigError, match="size must be one of 28, 64, 128, 224"):
        medmnist_file_name("chestmnist", 32)


def test_download_verifies_the_checksum_and_writes_atomically(tmp_path, dev_npz):
    md5 = hashlib.md5(dev_npz.read_bytes()).hexdigest()
    out = tmp_path / "data"
    seen = []
    path = download_medmnist(
        "pneumoniamnist", out, md5=md5, url=dev_npz.as_uri(), progress=lambda d, t: seen.append((d, t))
    )
    assert path == out / "pneumoniamnist.npz" and file_md5(path) == md5
    assert seen and seen[-1][0] == dev_npz.stat().st_size
    assert len(load_layout("medmnist", path)) == 4406
    assert sorted(p.name for p in out.iterdir()) == ["pneumoniamnist.npz"]  # no temp file left


def test_checksum_mismatch_keeps_nothing(tmp_path, dev_npz):
    with pytest.raises(DownloadError, match="does not match the expected 28209eda62fecd6e6a2d98b1501bb15f"):
        download_medmnist("pneumoniamnist", tmp_path, url=dev_npz.as_uri())  # the excerpt is not the official file
    assert list(tmp_path.iterdir()) == []


def test_present_file_is_not_fetched_again_and_network_errors_are_named(tmp_path, dev_npz):
    md5 = file_md5(dev_npz)
    target = tmp_path / "pneumoniamnist_64.npz"
    target.write_bytes(dev_npz.read_bytes())

    def no_network(url, timeout):
        raise urllib.error.URLError("offline")

    assert download_medmnist("pneumoniamnist", tmp_path, size=64, md5=md5, opener=no_network) == target
    target.write_bytes(b"stale")
    with pytest.raises(DownloadError, match=r"cannot download https://zenodo.org/records/10519652/.*: offline"):
        download_medmnist("pneumoniamnist", tmp_path, size=64, md5=md5, opener=no_network)
    assert target.read_bytes() == b"stale"  # the old file is untouched when the new one cannot be fetched
