"""`radcnn predict / train` with --key-file: encrypted models and images, and the messages for wrong or missing keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from radcnn.cli.app import main
from radcnn.encryption import Secret, encrypt_file, encrypt_path, generate_key_file
from radcnn.models.checkpoint import save_model
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec
from radcnn.phantom.synth import synthesize_dataset


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare with whitespace runs collapsed."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A key, a plaintext and an encrypted copy of a tiny DICOM tree, and a run whose model is encrypted in place."""
    root = tmp_path_factory.mktemp("encrypted_cli")
    key = generate_key_file(root / "project.key")
    plain, enc = root / "plain", root / "enc"
    synthesize_dataset(plain, n_patients=8, size=64, fmt="dicom", seed=0)
    encrypt_path(plain, enc, Secret.from_key_file(key))
    spec = ModelSpec(architecture="seed_cnn", input_size=(32, 32), label_names=("nodule",), thresholds=(0.5,))
    plain_run, run = root / "plain_run", root / "run"
    model_file = save_model(create_model("seed_cnn", num_outputs=1, input_size=(32, 32)), spec, plain_run / "m")
    run.mkdir()
    encrypt_file(model_file, run / "best_model.safetensors.rcenc", Secret.from_key_file(key))
    return {"root": root, "key": key, "plain": plain, "enc": enc, "run": run, "model": model_file}


def _images(tree: Path, n: int = 3) -> list[Path]:
    return sorted(p for p in (tree / "images").rglob("*") if p.is_file())[:n]


def test_predict_reads_an_encrypted_model_and_encrypted_images(project, capsys):
    encrypted = _images(project["enc"])
    args = ["predict", str(project["run"]), *map(str, encrypted), "--format", "json"]
    assert main([*args, "--key-file", str(project["key"])]) == 0
    from_encrypted = json.loads(capsys.readouterr().out)
    assert main(["predict", str(project["model"]), *map(str, _images(project["plain"])), "--format", "json"]) == 0
    from_plain = json.loads(capsys.readouterr().out)
    assert len(from_encrypted) == 3
    # Same model, same pixels: the same probabilities as the plaintext files give.
    assert [r["nodule_probability"] for r in from_encrypted] == [r["nodule_probability"] for r in from_plain]
    # A plain image name is found as its .rcenc file.
    plain_name = str(encrypted[0]).removesuffix(".rcenc")
    assert main(["predict", str(project["run"]), plain_name, "-f", "json", "-k", str(project["key"])]) == 0
    assert json.loads(capsys.readouterr().out)[0]["nodule_probability"] == from_plain[0]["nodule_probability"]


def test_a_passphrase_from_the_environment_works_too(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RADCNN_TEST_PASSPHRASE", "a long passphrase")
    secret = Secret.from_passphrase("a long passphrase")
    image = _images(project["plain"], 1)[0]
    encrypt_file(image, tmp_path / "x.dcm.rcenc", secret, scrypt_params=(10, 8, 1))
    encrypt_file(project["model"], tmp_path / "model.safetensors.rcenc", secret, scrypt_params=(10, 8, 1))
    args = ["predict", str(tmp_path / "model.safetensors.rcenc"), str(tmp_path / "x.dcm.rcenc"), "-f", "csv"]
    assert main([*args, "--passphrase-env", "RADCNN_TEST_PASSPHRASE"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_wrong_key_is_one_clear_message(project, tmp_path, capsys):
    wrong = generate_key_file(tmp_path / "wrong.key")
    image = _images(project["enc"], 1)[0]
    assert main(["predict", str(project["run"]), str(image), "--key-file", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2  # one message (Rich may wrap it)
    assert "best_model.safetensors.rcenc" in _flat(err) and "wrong key or passphrase" in _flat(err)
    out = tmp_path / "run"
    assert main(["train", "--data", str(project["enc"]), "--out", str(out), "--key-file", str(wrong)]) == 1
    err = _flat(capsys.readouterr().err)
    assert "labels.csv.rcenc" in err and "wrong key or passphrase" in err and "Traceback" not in err
    assert not out.exists()


def test_a_missing_key_names_the_file_and_says_a_key_is_needed(project, tmp_path, capsys):
    image = _images(project["enc"], 1)[0]
    assert main(["predict", str(project["run"]), str(image)]) == 1
    err = _flat(capsys.readouterr().err)
    assert "best_model.safetensors.rcenc is encrypted; a key is needed" in err and "--key-file" in err
    # A plaintext model with an encrypted image: the image is named.
    assert main(["predict", str(project["model"]), str(image)]) == 1
    err = _flat(capsys.readouterr().err)
    assert f"{image.name} is encrypted; a key is needed" in err and "Traceback" not in err
    assert main(["train", "--data", str(project["enc"]), "--out", str(tmp_path / "run")]) == 1
    err = _flat(capsys.readouterr().err)
    assert "labels.csv.rcenc is encrypted; a key is needed" in err and "Traceback" not in err
    # The labels file in plaintext but its images encrypted: the CSV row that needs a key.
    mixed = tmp_path / "mixed"
    shutil.copytree(project["enc"], mixed)
    shutil.copy(project["plain"] / "labels.csv", mixed / "labels.csv")
    (mixed / "labels.csv.rcenc").unlink()
    assert main(["train", "--data", str(mixed), "--out", str(tmp_path / "run2")]) == 1
    err = _flat(capsys.readouterr().err)
    assert "row 2" in err and "a key is needed" in err
