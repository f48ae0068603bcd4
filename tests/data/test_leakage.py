import hashlib

import numpy as np
import pytest
import xxhash

from radcnn.data.layouts.common import hash_files
from radcnn.data.leakage import check_leakage, content_check, patient_check, pixel_hashes
from radcnn.errors import ConfigError, LeakageError, ManifestError

PATHS = [f"/data/img{i}.png" for i in range(6)]


def _images(identical: tuple[int, int] | None = (0, 5)) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 8, 8)).astype(np.float32)
    if identical is not None:
        images[identical[1]] = images[identical[0]]
    return images


def test_pixel_hashes_are_xxh3_of_the_quantised_rows():
    images = _images()
    hashes = pixel_hashes(images)
    row = np.round(images[1] * 65535).astype(np.uint16)
    assert hashes[1] == xxhash.xxh3_128_hexdigest(row.tobytes())
    assert hashes[0] == hashes[5] != hashes[1]
    # the cache's uint16 store hashes to the same values without conversion
    assert pixel_hashes(np.round(images * 65535).astype(np.uint16)) == hashes


def test_identical_images_across_splits_are_refused_naming_both_files():
    parts = np.array(["train", "train", "val", "val", "test", "test"])
    with pytest.raises(LeakageError, match=r"img0\.png \(train\) = /data/img5\.png \(test\).*--on-leakage drop"):
        content_check(PATHS, parts, pixel_hashes(_images()), policy="fail")
    check, keep = content_check(PATHS, parts, pixel_hashes(_images(None)), policy="fail")
    assert check.passed and keep.all() and check.result == "no identical images in two splits"


def test_auto_policy_drops_training_copies_only_for_an_official_split():
    parts = np.array(["train", "train", "val", "val", "test", "test"])
    hashes = pixel_hashes(_images())
    with pytest.raises(LeakageError):  # radcnn's own split: identical images under two patients are a data error
        content_check(PATHS, parts, hashes, policy="auto", official=False)
    check, keep = content_check(PATHS, parts, hashes, policy="auto", official=True)
    assert keep.tolist() == [False, True, True, True, True, True]
    assert check.dropped == (("/data/img0.png", "identical pixels to /data/img5.png (test): train copy dropped"),)
    assert "1 copies outside test dropped" in check.result


def test_a_val_copy_of_a_test_image_is_dropped_and_test_stays_intact():
    parts = np.array(["train", "train", "val", "val", "test", "test"])
    check, keep = content_check(PATHS, parts, pixel_hashes(_images((2, 5))), policy="drop")
    assert keep.tolist() == [True, True, False, True, True, True]
    assert check.dropped[0][1] == "identical pixels to /data/img5.png (test): val copy dropped"


def test_unknown_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="on_leakage must be one of auto, fail, drop"):
        content_check(PATHS, np.array(["train"] * 6), pixel_hashes(_images()), policy="ignore")


def test_patient_check_names_patients_in_two_partitions():
    with pytest.raises(LeakageError, match=r"1 patient\(s\) in more than one partition: A \(test/train\)"):
        patient_check(np.array(["A", "A", "B"]), np.array(["train", "test", "test"]))
    record = patient_check(np.array(["A", "B"]), np.array(["train", "test"]))
    assert record.passed and record.to_dict()["checked"] == "2 patient ids over 2 images"
    with pytest.raises(LeakageError, match="identical image"):
        check_leakage(["P1", "P2"], ["train", "test"], content_hashes=["abc", "abc"])


def test_hash_files_is_sha256_of_the_bytes(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"f{i}.bin")
        paths[-1].write_bytes(bytes([i % 2]) * 100)
    digests = hash_files(paths, workers=2)
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert digests[0] == digests[2] != digests[1]
    with pytest.raises(ManifestError, match="cannot read the file to hash it"):
        hash_files([tmp_path / "absent.bin"])
