"""`radcnn keygen`, `radcnn encrypt` and `radcnn decrypt` through `main`."""

from __future__ import annotations

import os

from radcnn.cli.app import main


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare with whitespace runs collapsed."""
    return " ".join(text.split())


def test_keygen_encrypt_decrypt_file_and_folder(tmp_path, capsys):
    key = tmp_path / "k.key"
    assert main(["keygen", str(key)]) == 0
    assert "fingerprint" in _flat(capsys.readouterr().out)
    assert main(["keygen", str(key)]) == 1  # never overwrites a key
    assert "refusing to overwrite" in _flat(capsys.readouterr().err)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(os.urandom(3000))
    (data / "sub" / "b.txt").write_text("patient list")
    assert main(["encrypt", str(data), str(tmp_path / "enc"), "--key-file", str(key)]) == 0
    assert (tmp_path / "enc" / "sub" / "b.txt.rcenc").is_file()
    assert main(["decrypt", str(tmp_path / "enc"), str(tmp_path / "dec"), "-k", str(key)]) == 0
    assert (tmp_path / "dec" / "a.bin").read_bytes() == (data / "a.bin").read_bytes()
    assert (tmp_path / "dec" / "sub" / "b.txt").read_text() == "patient list"
    single = tmp_path / "a.rcenc"
    assert main(["encrypt", str(data / "a.bin"), str(single), "-k", str(key)]) == 0
    assert main(["decrypt", str(single), str(tmp_path / "a.out"), "-k", str(key)]) == 0
    assert (tmp_path / "a.out").read_bytes() == (data / "a.bin").read_bytes()


def test_passphrase_from_environment_and_wrong_secret(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RADCNN_TEST_PW", "correct horse battery staple")
    monkeypatch.setenv("RADCNN_TEST_BAD", "wrong")
    plain = tmp_path / "f.txt"
    plain.write_text("MRN0012345")
    enc = tmp_path / "f.rcenc"
    assert main(["encrypt", str(plain), str(enc), "--passphrase-env", "RADCNN_TEST_PW"]) == 0
    assert main(["decrypt", str(enc), str(tmp_path / "bad.txt"), "--passphrase-env", "RADCNN_TEST_BAD"]) == 1
    err = _flat(capsys.readouterr().err)
    assert "wrong key or passphrase" in err and "Traceback" not in err
    assert not (tmp_path / "bad.txt").exists()
    assert main(["decrypt", str(enc), str(tmp_path / "ok.txt"), "--passphrase-env", "RADCNN_TEST_PW"]) == 0
    assert (tmp_path / "ok.txt").read_text() == "MRN0012345"


def test_missing_or_ambiguous_secret_and_tampering(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RADCNN_KEY_FILE", raising=False)
    plain = tmp_path / "f.txt"
    plain.write_text("x" * 100)
    assert main(["encrypt", str(plain), str(tmp_path / "f.rcenc")]) == 1
    assert "no key given" in _flat(capsys.readouterr().err)
    key = tmp_path / "k.key"
    main(["keygen", str(key)])
    monkeypatch.setenv("PW", "pw")
    assert main(["encrypt", str(plain), str(tmp_path / "f.rcenc"), "-k", str(key), "--passphrase-env", "PW"]) == 1
    assert "give one secret" in _flat(capsys.readouterr().err)
    assert main(["encrypt", str(plain), str(tmp_path / "f.rcenc"), "-k", str(key)]) == 0
    raw = bytearray((tmp_path / "f.rcenc").read_bytes())
    raw[-3] ^= 1
    (tmp_path / "f.rcenc").write_bytes(bytes(raw))
    assert main(["decrypt", str(tmp_path / "f.rcenc"), str(tmp_path / "out.txt"), "-k", str(key)]) == 1
    assert "authentication failed at chunk 0" in _flat(capsys.readouterr().err)
    assert not (tmp_path / "out.txt").exists()
