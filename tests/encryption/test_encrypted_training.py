"""Training, evaluation and model loading on data encrypted at rest: nothing plaintext may reach the disk."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from radcnn.cli.app import main
from radcnn.config import DataConfig
from radcnn.data.cache.memory import decode_in_memory
from radcnn.data.cache.store import quantize
from radcnn.data.prepare import prepare_data
from radcnn.data.readers.dispatch import read_image
from radcnn.data.transforms import preprocess
from radcnn.encryption import Secret, decrypt_to_bytes, encrypt_file, encrypt_path, generate_key_file
from radcnn.encryption.files import KeyNeededError
from radcnn.errors import EncryptionError, ImageReadError, ManifestError
from radcnn.models.checkpoint import header_metadata, load_model, read_spec, save_model
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec
from radcnn.phantom.synth import synthesize_dataset
from radcnn.serve.predictor import Predictor

FAST_SCRYPT = (10, 8, 1)  # passphrase tests: the format's parameters are stored per file, so cheap ones work


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _encrypted_tree(tmp_path: Path, fmt: str, secret: Secret, **kwargs) -> tuple[Path, Path]:
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    synthesize_dataset(plain, n_patients=8, size=64, fmt=fmt, seed=0)
    encrypt_path(plain, enc, secret, **kwargs)
    return plain, enc


@pytest.mark.parametrize("fmt", ["dicom", "png"])
def test_training_on_an_encrypted_tree_leaves_no_plaintext_on_disk(tmp_path, monkeypatch, capsys, fmt):
    # Every temporary file of this process (and of its forked decoding workers) lands under tmp_path, so the scan
    # below covers it; the machine-wide temp folder is not scanned because concurrent test runs may hold
    # byte-identical synthetic data (same seed).
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    key = generate_key_file(tmp_path / "project.key")
    plain, enc = _encrypted_tree(tmp_path, fmt, Secret.from_key_file(key))
    image = _files(plain / "images")[0]
    csv_bytes = (plain / "labels.csv").read_bytes()
    n_images = len(csv_bytes.decode().strip().splitlines()) - 1
    pixels, _ = read_image(image)
    needles = {
        "an image file": image.read_bytes(),
        "the labels CSV": csv_bytes,
        "a labels CSV row": csv_bytes.splitlines()[1],
        "that image's decoded pixels as the cache stores them": quantize(preprocess(pixels, (32, 32))[0]).tobytes(),
    }
    shutil.rmtree(plain)  # strict: from here on the only copy of the data is the encrypted tree

    run = tmp_path / "run"
    args = ["train", "--data", str(enc), "--out", str(run), "--size", "32", "--epochs", "1", "--batch-size", "8"]
    assert main([*args, "--precision", "32", "--key-file", str(key)]) == 0
    assert main(["evaluate", str(run), "--bootstrap", "20"]) == 0  # the key file named in the run's config.yaml
    # The report and an explanation gallery show patients' radiographs: written encrypted like the split.
    assert main(["report", str(run), "--bootstrap", "20", "--gallery", "1"]) == 0
    test_image = str(next((enc / "images").rglob("*.rcenc"))).removesuffix(".rcenc")
    explain_args = ["explain", str(run), test_image, "--method", "gradcam", "-o", str(tmp_path / "maps")]
    assert main([*explain_args, "--key-file", str(key)]) == 0
    capsys.readouterr()
    assert (run / "report.html.rcenc").is_file() and not (run / "report.html").exists()
    assert b"<html" in decrypt_to_bytes(run / "report.html.rcenc", Secret.from_key_file(key)).lower()
    assert (tmp_path / "maps" / "gallery.html.rcenc").is_file() and not list((tmp_path / "maps").rglob("*.png"))

    assert not list(tmp_path.rglob(".radcnn-cache")), "the on-disk decode cache must be bypassed"
    assert (run / "split.csv.rcenc").is_file() and not (run / "split.csv").exists()
    assert (run / "predictions.csv.rcenc").is_file() and not (run / "predictions.csv").exists()
    hits = [
        f"{path.relative_to(tmp_path)} holds {what}"
        for path in _files(tmp_path)
        for what, needle in needles.items()
        if needle in path.read_bytes()
    ]
    assert hits == []
    assert "project.key" in (run / "config.yaml").read_text()  # the key file's path, never key material
    assert key.read_text().splitlines()[-1] not in (run / "config.yaml").read_text()

    # The encrypted split is the real patient-level split, readable with the key.
    split = pd.read_csv(io.BytesIO(decrypt_to_bytes(run / "split.csv.rcenc", Secret.from_key_file(key))))
    assert len(split) == n_images and set(split["split"]) == {"train", "val", "test"}
    assert split.groupby("patient_id")["split"].nunique().max() == 1


def test_prepare_data_decodes_encrypted_and_plain_files_in_memory_like_the_cache(tmp_path, monkeypatch):
    secret = Secret.from_passphrase("correct horse battery staple")
    plain, enc = _encrypted_tree(tmp_path, "png", secret, scrypt_params=FAST_SCRYPT)
    # A mixed tree: one image left unencrypted beside the encrypted ones.
    mixed = _files(enc / "images")[3]
    mixed.unlink()
    shutil.copy(plain / mixed.relative_to(enc).with_suffix(""), mixed.with_suffix(""))
    monkeypatch.setenv("RADCNN_TEST_PASSPHRASE", "correct horse battery staple")
    calls = []
    encrypted = prepare_data(
        DataConfig(source=str(enc), image_size=(32, 32), key_env="RADCNN_TEST_PASSPHRASE"),
        seed=0,
        progress=lambda done, total: calls.append((done, total)),
    )
    reference = prepare_data(DataConfig(source=str(plain), image_size=(32, 32), cache_dir=str(tmp_path / "c")), seed=0)
    n = len(reference.manifest)
    assert calls[-1] == (n, n) and len(calls) == n
    assert not (enc / ".radcnn-cache").exists()
    for part in ("train", "val", "test"):
        a, b = encrypted.splits[part], reference.splits[part]
        np.testing.assert_array_equal(a.images[np.arange(len(a))], b.images[np.arange(len(b))])
        np.testing.assert_array_equal(a.labels, b.labels)
        assert [Path(p).relative_to(enc) for p in a.table["path"]] == [
            Path(p).relative_to(plain) for p in b.table["path"]
        ]


def test_missing_wrong_or_tampered_keys_fail_clearly(tmp_path):
    key = Secret.from_key_file(generate_key_file(tmp_path / "k.key"))
    other = Secret.from_key_file(generate_key_file(tmp_path / "other.key"))
    plain, enc = _encrypted_tree(tmp_path, "png", key)
    config = DataConfig(source=str(enc), image_size=(16, 16))
    with pytest.raises(KeyNeededError, match=r"labels\.csv\.rcenc is encrypted; a key is needed"):
        prepare_data(config, seed=0)
    with pytest.raises(EncryptionError, match="wrong key"):
        prepare_data(config, seed=0, key=other)
    # A plaintext labels file naming encrypted images: the row says a key is needed.
    shutil.copy(plain / "labels.csv", enc / "labels.csv")
    (enc / "labels.csv.rcenc").unlink()
    with pytest.raises(ManifestError, match=r"row 2.*encrypted.*a key is needed"):
        prepare_data(config, seed=0)
    # A modified file fails authentication even under on_error="skip": skipping would hide tampering.
    victim = _files(enc / "images")[0]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(EncryptionError, match="authentication failed"):
        prepare_data(DataConfig(source=str(enc), image_size=(16, 16), on_error="skip"), seed=0, key=key)
    # A plain reader meeting an encrypted file says what it is.
    with pytest.raises(ImageReadError, match="is encrypted.*a key is needed"):
        read_image(_files(enc / "images")[1])


def test_decode_in_memory_skips_unreadable_images_under_skip(tmp_path):
    key = Secret.from_key_file(generate_key_file(tmp_path / "k.key"))
    _, enc = _encrypted_tree(tmp_path, "png", key)
    paths = [p.with_suffix("") for p in _files(enc / "images")[:4]] + [enc / "images" / "absent.png"]
    result = decode_in_memory(paths, size=(16, 16), key=key, workers=2, on_error="skip")
    assert result.valid.tolist() == [True, True, True, True, False]
    assert result.skipped[0][0] == paths[-1] and "not found" in result.skipped[0][1]
    assert result.array().dtype == np.uint16 and not isinstance(result.array(), np.memmap)
    with pytest.raises(ImageReadError, match="absent.png"):
        decode_in_memory(paths, size=(16, 16), key=key, workers=1)


def test_an_encrypted_model_is_loaded_from_memory(tmp_path):
    key = Secret.from_key_file(generate_key_file(tmp_path / "k.key"))
    model = create_model("seed_cnn", num_outputs=1, input_size=(32, 32))
    spec = ModelSpec(architecture="seed_cnn", input_size=(32, 32), label_names=("nodule",), thresholds=(0.3,))
    run = tmp_path / "run"
    plain = save_model(model, spec, run / "best_model.safetensors")
    from safetensors import safe_open

    with safe_open(str(plain), framework="pt") as handle:
        assert header_metadata(plain.read_bytes(), plain) == handle.metadata()
    encrypt_file(plain, run / "best_model.safetensors.rcenc", key)
    plain.unlink()
    before = _files(tmp_path)

    loaded, loaded_spec = load_model(run / "best_model.safetensors", key=key)  # found as .rcenc
    assert loaded_spec == spec == read_spec(run / "best_model.safetensors.rcenc", key=key)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    predictor = Predictor.from_path(run, key=key)
    assert predictor.spec.thresholds == (0.3,)
    assert _files(tmp_path) == before  # decrypted in memory: no temporary plaintext file
    with pytest.raises(KeyNeededError, match=r"best_model\.safetensors\.rcenc is encrypted; a key is needed"):
        Predictor.from_path(run)
    with pytest.raises(EncryptionError, match="wrong key"):
        load_model(run / "best_model.safetensors.rcenc", key=Secret.from_key_file(generate_key_file(tmp_path / "o")))
