"""Encrypt or decrypt a file or a whole directory tree (datasets, caches, checkpoints) with one secret.

A tree is written under a temporary name and renamed into place when every file succeeded, so a failed run
leaves neither a half-encrypted copy nor half-decrypted plaintext behind. Encrypted files get the `.rcenc`
suffix; decryption strips it and refuses files that do not carry it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from radcnn.encryption.cipher import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SCRYPT,
    KekCache,
    decrypt_file,
    encrypt_file,
)
from radcnn.encryption.files import is_encrypted_file
from radcnn.encryption.format import SUFFIX
from radcnn.encryption.keys import Secret
from radcnn.errors import EncryptionError
from radcnn.io import atomic_directory

logger = logging.getLogger(__name__)


def _check_destination(src: Path, dst: Path) -> None:
    src_r, dst_r = src.resolve(), dst.resolve()
    if dst_r == src_r or src_r in dst_r.parents:
        raise EncryptionError(f"the output {dst} is inside the input {src}; choose a directory outside it")
    if dst.exists():
        raise EncryptionError(f"the output {dst} already exists; refusing to overwrite it")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def encrypt_path(
    src: str | Path,
    dst: str | Path,
    secret: Secret | bytes,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scrypt_params: tuple[int, int, int] = DEFAULT_SCRYPT,
) -> list[Path]:
    """Encrypt a file to `dst`, or a directory to a mirror tree at `dst` with `.rcenc` added to each name."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise EncryptionError(f"{src}: nothing to encrypt (no such file or directory)")
    _check_destination(src, dst)
    cache = KekCache()
    if src.is_file():
        return [encrypt_file(src, dst, secret, chunk_size=chunk_size, scrypt_params=scrypt_params, cache=cache)]
    written = []
    with atomic_directory(dst) as tmp:
        for path in _files(src):
            rel = path.relative_to(src)
            target = tmp / rel.parent / (rel.name + SUFFIX)
            encrypt_file(path, target, secret, chunk_size=chunk_size, scrypt_params=scrypt_params, cache=cache)
            written.append(dst / rel.parent / target.name)
    logger.info("encrypted %d files from %s into %s", len(written), src, dst)
    return written


def decrypt_path(src: str | Path, dst: str | Path, secret: Secret | bytes) -> list[Path]:
    """Decrypt a file to `dst`, or a tree of `.rcenc` files to a mirror tree at `dst` (suffix removed).

    The whole tree is authenticated file by file into a temporary directory; any failure removes it."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise EncryptionError(f"{src}: nothing to decrypt (no such file or directory)")
    _check_destination(src, dst)
    cache = KekCache()
    if src.is_file():
        return [decrypt_file(src, dst, secret, cache=cache)]
    written = []
    with atomic_directory(dst) as tmp:
        for path in _files(src):
            rel = path.relative_to(src)
            if path.suffix != SUFFIX or not is_encrypted_file(path):
                raise EncryptionError(f"{path}: not a radcnn encrypted file (expected a {SUFFIX} file)")
            target = tmp / rel.parent / rel.name[: -len(SUFFIX)]
            decrypt_file(path, target, secret, cache=cache)
            written.append(dst / rel.parent / target.name)
    logger.info("decrypted %d files from %s into %s", len(written), src, dst)
    return written
