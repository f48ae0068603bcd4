"""Files encrypted at rest, as every other layer meets them: found, recognised, read and written.

`radcnn encrypt DIR OUT` mirrors a tree with every file suffixed `.rcenc`, so a labels CSV that lists
``images/x.dcm`` is found as ``images/x.dcm.rcenc``. `stored_file` makes that lookup, `read_plaintext` returns a
file's plaintext bytes (decrypted in memory only when the file starts with the radcnn encryption magic, so plain
files in the same tree keep working) and `write_protected` writes an output plain or, with a key, encrypted as
``<name>.rcenc`` — the one rule for anything radcnn writes that carries patient data (split tables,
predictions, reports with thumbnails, explanation maps).

Recognising an encrypted file costs no `cryptography` import (the magic number and suffix are in `format`); the
[privacy] extra is imported only when a file is actually decrypted or encrypted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from radcnn.encryption.format import KEY_HELP, MAGIC, SUFFIX
from radcnn.errors import EncryptionError
from radcnn.io import atomic_path

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret


class KeyNeededError(EncryptionError):
    """An encrypted file was met but no key was given."""


def key_needed(path: str | os.PathLike[str]) -> KeyNeededError:
    return KeyNeededError(f"{path} is encrypted; a key is needed to read it: {KEY_HELP}")


def stored_file(path: str | os.PathLike[str]) -> Path | None:
    """The file that holds `path` on disk: `path` itself, else `path.rcenc` beside it; None when neither exists."""
    path = Path(path)
    if path.is_file():
        return path
    sibling = path.with_name(path.name + SUFFIX)
    return sibling if sibling.is_file() else None


def is_encrypted_file(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the radcnn encryption magic (content, not name, decides). An unreadable file
    counts as not encrypted, so that the plain reader reports why it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_plaintext(path: str | os.PathLike[str], key: Secret | bytes | None = None, *, cache=None) -> bytes:
    """The plaintext bytes of the existing file `path`: read as is, or decrypted in memory when encrypted.

    Bytes are returned only after every chunk authenticated; a wrong key or a modified file raises
    EncryptionError, an encrypted file without a key raises `KeyNeededError`. `cache` (a
    `radcnn.encryption.cipher.KekCache`) lets many files encrypted under one passphrase share one scrypt run.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC))
        if head != MAGIC:
            return head + handle.read()
        if key is None:
            raise key_needed(path)
        from radcnn.encryption.cipher import iter_decrypt

        handle.seek(0)
        # iter_decrypt (not decrypt_to_bytes) because it takes the KEK cache; joining reads to the final chunk,
        # so truncation is detected before anything is returned.
        return b"".join(iter_decrypt(handle, key, where=str(path), cache=cache))


def secret_from(key_file: str | os.PathLike[str] | None, key_env: str | None) -> Secret | None:
    """The secret named by a key file or by the NAME of an environment variable holding a passphrase; None when
    neither is given (data.key_file / data.key_env, or --key-file / --passphrase-env)."""
    if not key_file and not key_env:
        return None
    from radcnn.encryption.keys import KeyFileError, Secret

    if key_file:
        return Secret.from_key_file(key_file)
    value = os.environ.get(key_env)
    if not value:
        raise KeyFileError(f"environment variable {key_env} (data.key_env) is not set or empty")
    return Secret.from_passphrase(value)


def plain_name(path: str | os.PathLike[str]) -> Path:
    """`path` without the `.rcenc` suffix: the name readers and reports use for an encrypted file."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(SUFFIX))


def write_protected(path: str | os.PathLike[str], data: bytes, key: Secret | bytes | None) -> Path:
    """Write `data` to `path` atomically — or, with a key, encrypted to `path.rcenc` — and return the file written.

    The other variant of the same name is removed once the new file is in place, so a run never holds a stale
    plaintext copy beside a fresh encrypted one (or the other way round)."""
    path = Path(path)
    if key is None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        written, other = path, path.with_name(path.name + SUFFIX)
    else:
        from radcnn.encryption.cipher import encrypt_bytes

        written, other = path.with_name(path.name + SUFFIX), path
        encrypt_bytes(data, written, key)
    if other.is_file():
        other.unlink()
    return written
