"""Chunked AES-256-GCM format: round trips, tamper detection, no plaintext left behind, in-memory reading."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tracemalloc
from pathlib import Path

import pytest

from radcnn.encryption.cipher import (
    HEADER_BYTES,
    MAGIC,
    TAG_BYTES,
    decrypt_file,
    decrypt_to_bytes,
    encrypt_bytes,
    encrypt_file,
    encrypt_stream,
    iter_decrypt,
    open_encrypted,
)
from radcnn.encryption.files import is_encrypted_file
from radcnn.encryption.keys import Secret
from radcnn.encryption.tree import decrypt_path, encrypt_path
from radcnn.errors import EncryptionError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FAST_SCRYPT = (10, 8, 1)  # cheap scrypt for tests; the default is 2^17
CHUNK = 256


def _encrypted(tmp_path: Path, data: bytes, name: str = "f.rcenc", secret=KEY, chunk: int = CHUNK) -> Path:
    src = tmp_path / (name + ".plain")
    src.write_bytes(data)
    return encrypt_file(src, tmp_path / name, secret, chunk_size=chunk, scrypt_params=FAST_SCRYPT)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_sizes(tmp_path, size):
    data = os.urandom(size)
    enc = _encrypted(tmp_path, data)
    # The exact size: header + ciphertext + one tag per chunk (an empty file is one empty final chunk).
    n_chunks = 1 if size == 0 else -(-size // CHUNK)
    assert enc.stat().st_size == HEADER_BYTES + size + TAG_BYTES * n_chunks
    out = decrypt_file(enc, tmp_path / "out.bin", KEY)
    assert out.read_bytes() == data
    assert decrypt_to_bytes(enc, KEY) == data
    with open_encrypted(enc, KEY) as fh:
        assert fh.read() == data
    assert is_encrypted_file(enc) and not is_encrypted_file(tmp_path / "f.rcenc.plain")


def test_ciphertext_differs_between_runs_and_hides_plaintext(tmp_path):
    data = b"patient Jane Doe MRN 12345 " * 50
    a, b = _encrypted(tmp_path, data, "a.rcenc"), _encrypted(tmp_path, data, "b.rcenc")
    assert a.read_bytes() != b.read_bytes()  # fresh data key and nonces per file
    assert b"Jane Doe" not in a.read_bytes()


def test_large_file_streams_with_bounded_memory(tmp_path):
    """> 100 MB written, encrypted and decrypted in 1 MiB chunks; compared by hash, never held in memory."""
    src, size, block = tmp_path / "big.bin", 100 * (1 << 20) + 12345, 1 << 20
    digest = hashlib.sha256()
    seed = os.urandom(block)
    with src.open("wb") as fh:
        written = 0
        while written < size:
            piece = seed[: min(block, size - written)]
            piece = struct.pack(">Q", written) + piece[8:] if len(piece) >= 8 else piece
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    tracemalloc.start()
    try:
        enc = encrypt_file(src, tmp_path / "big.rcenc", KEY)
        src.unlink()
        out = decrypt_file(enc, tmp_path / "big.out", KEY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * (1 << 20), f"peak Python allocation {peak / 2**20:.1f} MiB: not streaming"
    check = hashlib.sha256()
    with out.open("rb") as fh:
        while piece := fh.read(block):
            check.update(piece)
    assert out.stat().st_size == size
    assert check.hexdigest() == digest.hexdigest()


def _expect_failure(tmp_path: Path, enc: Path, match: str, secret=KEY) -> None:
    target = tmp_path / "plain.out"
    with pytest.raises(EncryptionError, match=match):
        decrypt_file(enc, target, secret)
    assert not target.exists()
    assert _leftovers(tmp_path) == []  # the temporary plaintext was removed too
    with pytest.raises(EncryptionError, match=match):
        decrypt_to_bytes(enc, secret)


def test_flipped_bit_in_a_chunk_is_detected(tmp_path):
    enc = _encrypted(tmp_path, os.urandom(3 * CHUNK))
    raw = bytearray(enc.read_bytes())
    raw[HEADER_BYTES + CHUNK + TAG_BYTES + 5] ^= 0x01  # inside chunk 1
    enc.write_bytes(bytes(raw))
    _expect_failure(tmp_path, enc, "authentication failed at chunk 1")


def test_flipped_bit_in_the_header_is_detected(tmp_path):
    enc = _encrypted(tmp_path, b"x" * 100)
    raw = bytearray(enc.read_bytes())
    raw[40] ^= 0x80  # inside the salt / nonce prefix area, covered by the key wrap's associated data
    enc.write_bytes(bytes(raw))
    _expect_failure(tmp_path, enc, "wrong key or passphrase")


@pytest.mark.parametrize("cut", ["boundary", "mid", "header"])
def test_truncation_is_detected(tmp_path, cut):
    enc = _encrypted(tmp_path, os.urandom(4 * CHUNK))
    raw = enc.read_bytes()
    keep = {
        "boundary": HEADER_BYTES + 2 * (CHUNK + TAG_BYTES),
        "mid": HEADER_BYTES + 3 * (CHUNK + TAG_BYTES) + 10,
        "header": 50,
    }[cut]
    enc.write_bytes(raw[:keep])
    _expect_failure(tmp_path, enc, "truncated|authentication failed")


def test_appended_data_is_detected(tmp_path):
    enc = _encrypted(tmp_path, os.urandom(2 * CHUNK))
    enc.write_bytes(enc.read_bytes() + os.urandom(CHUNK + TAG_BYTES))
    _expect_failure(tmp_path, enc, "authentication failed at chunk 1")


def test_swapped_chunks_are_detected(tmp_path):
    enc = _encrypted(tmp_path, os.urandom(3 * CHUNK))
    raw = enc.read_bytes()
    rec = CHUNK + TAG_BYTES
    first, second = raw[HEADER_BYTES : HEADER_BYTES + rec], raw[HEADER_BYTES + rec : HEADER_BYTES + 2 * rec]
    enc.write_bytes(raw[:HEADER_BYTES] + second + first + raw[HEADER_BYTES + 2 * rec :])
    _expect_failure(tmp_path, enc, "authentication failed at chunk 0")


def test_wrong_key_and_wrong_secret_kind(tmp_path):
    enc = _encrypted(tmp_path, b"secret scan")
    _expect_failure(tmp_path, enc, "wrong key or passphrase", secret=OTHER_KEY)
    _expect_failure(tmp_path, enc, "encrypted with a key file", secret=Secret.from_passphrase("pw"))


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path):
    enc = _encrypted(tmp_path, b"label data", secret=Secret.from_passphrase("correct horse"))
    assert decrypt_to_bytes(enc, Secret.from_passphrase("correct horse")) == b"label data"
    _expect_failure(tmp_path, enc, "wrong key or passphrase", secret=Secret.from_passphrase("wrong horse"))
    _expect_failure(tmp_path, enc, "encrypted with a passphrase", secret=KEY)


def test_not_an_encrypted_file(tmp_path):
    plain = tmp_path / "x.bin"
    plain.write_bytes(b"hello world, not encrypted at all" * 10)
    _expect_failure(tmp_path, plain, "not a radcnn encrypted file")


def test_stream_api_and_header_magic():
    buffer = io.BytesIO()
    assert encrypt_stream(io.BytesIO(b"abc"), buffer, KEY, chunk_size=64) == 3
    assert buffer.getvalue().startswith(MAGIC)
    assert b"".join(iter_decrypt(io.BytesIO(buffer.getvalue()), KEY)) == b"abc"


def test_open_encrypted_reports_truncation_at_the_end(tmp_path):
    enc = _encrypted(tmp_path, os.urandom(3 * CHUNK))
    enc.write_bytes(enc.read_bytes()[: HEADER_BYTES + 2 * (CHUNK + TAG_BYTES)])
    with open_encrypted(enc, KEY) as fh, pytest.raises(EncryptionError, match="authentication failed"):
        fh.read()


def test_encrypt_bytes_writes_no_plaintext(tmp_path):
    target = encrypt_bytes(b'{"pseudonym": "original"}', tmp_path / "map.rcenc", KEY)
    assert b"original" not in target.read_bytes()
    assert decrypt_to_bytes(target, KEY) == b'{"pseudonym": "original"}'


def test_tree_round_trip_and_failure_leaves_nothing(tmp_path):
    src = tmp_path / "data"
    (src / "a" / "b").mkdir(parents=True)
    files = {"x.npz": os.urandom(1000), "a/y.dcm": os.urandom(10), "a/b/z.ckpt": b""}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    enc = tmp_path / "enc"
    written = encrypt_path(src, enc, Secret.from_passphrase("pw"), chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    assert sorted(p.relative_to(enc).as_posix() for p in written) == sorted(f"{r}.rcenc" for r in files)
    dec = decrypt_path(enc, tmp_path / "dec", Secret.from_passphrase("pw"))
    assert len(dec) == 3
    for rel, data in files.items():
        assert (tmp_path / "dec" / rel).read_bytes() == data
    # One damaged file: the whole decrypted tree is withheld.
    victim = enc / "a" / "y.dcm.rcenc"
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(EncryptionError, match="y.dcm.rcenc"):
        decrypt_path(enc, tmp_path / "dec2", Secret.from_passphrase("pw"))
    assert not (tmp_path / "dec2").exists()
    assert _leftovers(tmp_path) == []


def test_tree_refuses_output_inside_input_and_existing_output(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_bytes(b"1")
    with pytest.raises(EncryptionError, match="inside the input"):
        encrypt_path(src, src / "enc", KEY)
    (tmp_path / "exists").mkdir()
    with pytest.raises(EncryptionError, match="already exists"):
        encrypt_path(src, tmp_path / "exists", KEY)
