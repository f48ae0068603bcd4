"""Encryption at rest: a chunked AES-256-GCM streaming format with a wrapped per-file data key.

File layout (version 1, all integers big-endian)::

    header (104 bytes)
      magic        8   b"RCNNENC\\0"
      version      1   1
      kdf          1   1 = key file (HKDF-SHA256), 2 = passphrase (scrypt)
      scrypt       3   log2(N), r, p (zero for key files)
      reserved     3   zero
      chunk_size   4   plaintext bytes per chunk
      salt        16   KDF salt
      nonce_prefix 8   random per file
      wrap_nonce  12   nonce used to wrap the data key
      wrapped_key 48   AES-GCM(KEK, data key), associated data = the 56 header bytes before it
    chunks
      AES-GCM(data key, nonce = nonce_prefix || u32 index, associated data = u64 index || u8 final)
      every chunk holds chunk_size plaintext bytes except the last (0..chunk_size); an empty file is one
      empty final chunk.

Why this shape: the data key is random per file, so a leaked chunk key never spans files and the key-encryption
key (from a key file or a passphrase) only ever encrypts 32 random bytes. The index in nonce and associated data
detects reordering; the final flag detects truncation at a chunk boundary and appended data; the header is the
associated data of the key wrap, so changing chunk size, salt or nonce prefix fails authentication too.
Decryption yields a chunk only after its tag verified, and file decryption renames the output into place only
after the final chunk authenticated. Memory stays at about two chunks whatever the file size.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from radcnn.encryption.format import MAGIC
from radcnn.encryption.keys import KEY_BYTES, Secret, derive_subkey
from radcnn.errors import EncryptionError, MissingExtraError
from radcnn.io import atomic_path

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError as exc:  # the [privacy] extra: name the pip command instead of a bare ImportError
    raise MissingExtraError("cryptography", "privacy") from exc

logger = logging.getLogger(__name__)

VERSION = 1
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE = 64, 64 << 20
TAG_BYTES = 16
KDF_KEY_FILE, KDF_SCRYPT = 1, 2
# OWASP's scrypt recommendation (N=2^17, r=8, p=1): ~128 MiB and a fraction of a second per file.
DEFAULT_SCRYPT = (17, 8, 1)
_MAX_SCRYPT_LOG2N = 22  # refuse headers that would ask for absurd memory

_PREFIX = struct.Struct(">8sBBBBB3xI16s8s12s")
_HEADER = struct.Struct(">8sBBBBB3xI16s8s12s48s")
HEADER_BYTES = _HEADER.size  # 104
_MAX_CHUNKS = 1 << 32  # the nonce holds a 32-bit counter


class KekCache:
    """Key-encryption keys already derived in this run, and one salt for the new files of a tree.

    scrypt costs a fraction of a second by design; a directory of ten thousand files shares one salt (and so one
    KEK) within a run, while every file keeps its own random data key and nonces."""

    def __init__(self) -> None:
        self.salt = os.urandom(16)
        self._keks: dict[tuple[int, bytes, tuple[int, int, int]], bytes] = {}

    def get(self, secret: Secret, kdf: int, salt: bytes, params: tuple[int, int, int], where: str) -> bytes:
        key = (kdf, salt, params)
        if key not in self._keks:
            self._keks[key] = _kek(secret, kdf, salt, params, where)
        return self._keks[key]


def _kek(secret: Secret, kdf: int, salt: bytes, scrypt_params: tuple[int, int, int], where: str) -> bytes:
    if kdf == KDF_KEY_FILE:
        if secret.kind != "key":
            raise EncryptionError(f"{where} was encrypted with a key file; a passphrase cannot open it")
        return derive_subkey(secret.material, "encryption-kek/v1", salt=salt)
    if kdf == KDF_SCRYPT:
        if secret.kind != "passphrase":
            raise EncryptionError(f"{where} was encrypted with a passphrase; a key file cannot open it")
        log2n, r, p = scrypt_params
        if not (10 <= log2n <= _MAX_SCRYPT_LOG2N and 1 <= r <= 32 and 1 <= p <= 16):
            raise EncryptionError(f"{where}: implausible scrypt parameters in the header (damaged file?)")
        return Scrypt(salt=salt, length=KEY_BYTES, n=1 << log2n, r=r, p=p).derive(secret.material)
    raise EncryptionError(f"{where}: unknown key-derivation id {kdf} in the header (damaged file?)")


def _make_header(
    secret: Secret, chunk_size: int, scrypt_params: tuple[int, int, int], cache: KekCache
) -> tuple[bytes, bytes, bytes]:
    """Return (header bytes, data key, nonce prefix) for a new file."""
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise EncryptionError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes")
    kdf = KDF_KEY_FILE if secret.kind == "key" else KDF_SCRYPT
    params = scrypt_params if kdf == KDF_SCRYPT else (0, 0, 0)
    salt, nonce_prefix, wrap_nonce = cache.salt, os.urandom(8), os.urandom(12)
    prefix = _PREFIX.pack(MAGIC, VERSION, kdf, *params, chunk_size, salt, nonce_prefix, wrap_nonce)
    data_key = AESGCM.generate_key(bit_length=256)
    kek = cache.get(secret, kdf, salt, params, "new file")
    wrapped = AESGCM(kek).encrypt(wrap_nonce, data_key, prefix)
    return prefix + wrapped, data_key, nonce_prefix


def _chunk_nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _chunk_aad(index: int, final: bool) -> bytes:
    return struct.pack(">QB", index, 1 if final else 0)


def _read_full(fh: BinaryIO, size: int) -> bytes:
    """Read exactly `size` bytes unless end of file comes first (plain `read` may return less on pipes)."""
    parts, remaining = [], size
    while remaining:
        block = fh.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


def _readinto_full(fh: BinaryIO, view: memoryview) -> int:
    """Fill `view` unless end of file comes first; returns the byte count (reused buffers: no allocation)."""
    total = 0
    while total < len(view):
        n = fh.readinto(view[total:])
        if not n:
            break
        total += n
    return total


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    secret: Secret | bytes,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scrypt_params: tuple[int, int, int] = DEFAULT_SCRYPT,
    cache: KekCache | None = None,
) -> int:
    """Encrypt everything readable from `src` into `dst`; returns the plaintext byte count."""
    secret = Secret.coerce(secret)
    header, data_key, nonce_prefix = _make_header(secret, chunk_size, scrypt_params, cache or KekCache())
    aead = AESGCM(data_key)
    dst.write(header)
    # Two input buffers (current + look-ahead) and one output buffer, reused for every chunk: fresh 1 MiB
    # allocations per chunk cost more than the AES itself.
    current, following = memoryview(bytearray(chunk_size)), memoryview(bytearray(chunk_size))
    out = memoryview(bytearray(chunk_size + TAG_BYTES))
    n_current, index, total = _readinto_full(src, current), 0, 0
    while True:
        # Look one chunk ahead: the last chunk must carry the final flag, even when it is full or empty.
        n_following = _readinto_full(src, following) if n_current == chunk_size else 0
        final = n_following == 0
        if index >= _MAX_CHUNKS:
            raise EncryptionError("input too large for one encrypted file (2^32 chunks); use a larger chunk size")
        sealed = out[: n_current + TAG_BYTES]
        aead.encrypt_into(_chunk_nonce(nonce_prefix, index), current[:n_current], _chunk_aad(index, final), sealed)
        dst.write(sealed)
        total += n_current
        if final:
            return total
        current, following, n_current, index = following, current, n_following, index + 1


def _decrypted_views(src: BinaryIO, secret: Secret | bytes, where: str, cache: KekCache | None) -> Iterator[memoryview]:
    """Authenticated plaintext chunks as views of one reused buffer: each view is valid until the next one."""
    secret = Secret.coerce(secret)
    header = _read_full(src, HEADER_BYTES)
    if len(header) < len(MAGIC) or header[: len(MAGIC)] != MAGIC:
        raise EncryptionError(f"{where} is not a radcnn encrypted file (no {MAGIC!r} header)")
    if len(header) < HEADER_BYTES:
        raise EncryptionError(f"{where}: the header is truncated")
    _, version, kdf, log2n, r, p, chunk_size, salt, nonce_prefix, wrap_nonce, wrapped = _HEADER.unpack(header)
    if version != VERSION:
        raise EncryptionError(f"{where}: format version {version} is not supported (this radcnn reads {VERSION})")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise EncryptionError(f"{where}: implausible chunk size {chunk_size} in the header (damaged file?)")
    kek = (cache or KekCache()).get(secret, kdf, salt, (log2n, r, p), where)
    try:
        data_key = AESGCM(kek).decrypt(wrap_nonce, wrapped, header[: _PREFIX.size])
    except InvalidTag as exc:
        raise EncryptionError(
            f"{where}: wrong key or passphrase (or a damaged header): the data key could not be unwrapped"
        ) from exc
    aead = AESGCM(data_key)
    record = chunk_size + TAG_BYTES
    current, following = memoryview(bytearray(record)), memoryview(bytearray(record))
    plain = memoryview(bytearray(chunk_size))
    n_current, index = _readinto_full(src, current), 0
    while True:
        if n_current < TAG_BYTES:
            raise EncryptionError(f"{where}: truncated: chunk {index} is missing or incomplete")
        n_following = _readinto_full(src, following) if n_current == record else 0
        final = n_following == 0
        view = plain[: n_current - TAG_BYTES]
        try:
            aead.decrypt_into(_chunk_nonce(nonce_prefix, index), current[:n_current], _chunk_aad(index, final), view)
        except InvalidTag as exc:
            raise EncryptionError(
                f"{where}: authentication failed at chunk {index}: the file was modified, truncated or reordered"
            ) from exc
        yield view
        if final:
            return
        current, following, n_current, index = following, current, n_following, index + 1


def iter_decrypt(
    src: BinaryIO, secret: Secret | bytes, *, where: str = "input", cache: KekCache | None = None
) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks (as bytes). Truncation is reported when the stream ends without a
    final chunk, so a consumer must read to the end (or use `decrypt_file` / `decrypt_to_bytes`) before
    trusting the data."""
    for view in _decrypted_views(src, secret, where, cache):
        yield bytes(view)


def encrypt_file(
    src: str | Path,
    dst: str | Path,
    secret: Secret | bytes,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scrypt_params: tuple[int, int, int] = DEFAULT_SCRYPT,
    cache: KekCache | None = None,
) -> Path:
    """Encrypt one file; `dst` appears only when complete."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise EncryptionError(f"{src}: no such file to encrypt")
    with src.open("rb") as fin, atomic_path(dst) as tmp, tmp.open("wb") as fout:
        encrypt_stream(fin, fout, secret, chunk_size=chunk_size, scrypt_params=scrypt_params, cache=cache)
    logger.debug("encrypted %s -> %s", src, dst)
    return dst


def encrypt_bytes(
    data: bytes,
    dst: str | Path,
    secret: Secret | bytes,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scrypt_params: tuple[int, int, int] = DEFAULT_SCRYPT,
) -> Path:
    """Encrypt in-memory data straight to `dst` (used for the re-identification mapping: no plaintext file)."""
    dst = Path(dst)
    with atomic_path(dst) as tmp, tmp.open("wb") as fout:
        encrypt_stream(io.BytesIO(data), fout, secret, chunk_size=chunk_size, scrypt_params=scrypt_params)
    return dst


def decrypt_file(src: str | Path, dst: str | Path, secret: Secret | bytes, *, cache: KekCache | None = None) -> Path:
    """Decrypt to a private temp file beside `dst` and rename it only after the final chunk authenticated;
    on any failure the temp file is deleted and `dst` is left untouched."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise EncryptionError(f"{src}: no such file to decrypt")
    with src.open("rb") as fin, atomic_path(dst) as tmp, tmp.open("wb") as fout:
        for view in _decrypted_views(fin, secret, str(src), cache):
            fout.write(view)
    return dst


def decrypt_to_bytes(path: str | Path, secret: Secret | bytes) -> bytes:
    """Decrypt a whole file in memory (e.g. a checkpoint for `torch.load(io.BytesIO(...), weights_only=True)`);
    nothing plaintext touches the disk and the bytes are returned only once every chunk authenticated."""
    path = Path(path)
    if not path.is_file():
        raise EncryptionError(f"{path}: no such file to decrypt")
    out = io.BytesIO()
    with path.open("rb") as fin:
        for view in _decrypted_views(fin, secret, str(path), None):
            out.write(view)
    return out.getvalue()


class _DecryptingRaw(io.RawIOBase):
    """Read-only raw stream over `iter_decrypt`; holds at most one chunk of plaintext."""

    def __init__(self, path: Path, secret: Secret | bytes):
        self._fh = path.open("rb")
        self._chunks = _decrypted_views(self._fh, secret, str(path), None)
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_encrypted(path: str | Path, secret: Secret | bytes) -> io.BufferedReader:
    """A streaming, read-only binary file object over an encrypted file (bounded memory, nothing on disk).

    Each chunk is authenticated before its bytes are returned; a truncated file raises `EncryptionError` when
    the reader reaches the end, so consume the stream fully before acting on it (e.g. read a whole NPZ)."""
    path = Path(path)
    if not path.is_file():
        raise EncryptionError(f"{path}: no such file to decrypt")
    return io.BufferedReader(_DecryptingRaw(path, secret), buffer_size=DEFAULT_CHUNK_SIZE)
