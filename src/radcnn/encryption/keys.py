"""Secrets for de-identification and encryption: key files, passphrases and derived sub-keys.

A radcnn key file holds 32 random bytes as hex on one line (comment lines start with ``#``). One key file can
serve a whole project: every use derives its own sub-key with HKDF-SHA256 and a purpose label, so the UID
mapping, the date shifts, the pseudonyms and the encryption key-encryption-key never share key material.
A passphrase is stretched with scrypt inside the encryption format (salt and cost stored in each file's header).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from radcnn.errors import MissingExtraError, PrivacyError

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as exc:  # the [privacy] extra: name the pip command instead of a bare ImportError
    raise MissingExtraError("cryptography", "privacy") from exc

KEY_BYTES = 32
_HEADER = "# radcnn key v1: keep this file secret; whoever holds it can recompute pseudonyms and decrypt data\n"


class KeyFileError(PrivacyError):
    """A key file is missing, unreadable or malformed, or no key was given at all."""


@dataclass(frozen=True, repr=False)
class Secret:
    """Either a raw 32-byte key (from a key file) or a passphrase. `repr` never shows the material."""

    kind: str  # "key" | "passphrase"
    material: bytes

    def __post_init__(self) -> None:
        if self.kind == "key" and len(self.material) != KEY_BYTES:
            raise KeyFileError(f"a radcnn key must be {KEY_BYTES} bytes, got {len(self.material)}")
        if self.kind == "passphrase" and not self.material:
            raise KeyFileError("the passphrase is empty")
        if self.kind not in ("key", "passphrase"):
            raise KeyFileError(f"unknown secret kind {self.kind!r}; expected 'key' or 'passphrase'")

    def __repr__(self) -> str:
        return f"Secret(kind={self.kind!r}, material=<hidden>)"

    @classmethod
    def from_key_file(cls, path: str | Path) -> Secret:
        return cls("key", load_key_file(path))

    @classmethod
    def from_passphrase(cls, passphrase: str) -> Secret:
        return cls("passphrase", passphrase.encode("utf-8"))

    @classmethod
    def coerce(cls, value: Secret | bytes) -> Secret:
        """Accept a `Secret` or raw key bytes (what `load_key_file` returns)."""
        if isinstance(value, Secret):
            return value
        if isinstance(value, bytes | bytearray):
            return cls("key", bytes(value))
        raise KeyFileError(f"expected a Secret or {KEY_BYTES} key bytes, got {type(value).__name__}")


def generate_key_file(path: str | Path) -> Path:
    """Write a new random key to `path` (mode 0600). Refuses to overwrite: losing a key loses the data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _HEADER + secrets.token_bytes(KEY_BYTES).hex() + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key file") from exc
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    return path


def load_key_file(path: str | Path | None) -> bytes:
    """Read a key file written by `generate_key_file`; every problem becomes one actionable message."""
    if path is None:
        raise KeyFileError("no key given: pass --key-file PATH (create one with `radcnn keygen PATH`)")
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"key file {path} not found; create one with `radcnn keygen {path}`")
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} cannot be read as a radcnn key file: {exc}") from exc
    body = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(body) != 1 or len(body[0]) != 2 * KEY_BYTES:
        raise KeyFileError(f"key file {path} is malformed: expected one line of {2 * KEY_BYTES} hex digits")
    try:
        return bytes.fromhex(body[0])
    except ValueError as exc:
        raise KeyFileError(f"key file {path} is malformed: the key line is not hexadecimal") from exc


def derive_subkey(master: bytes, purpose: str, *, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 sub-key for one purpose, so that no two uses of a project key share material."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=f"radcnn/{purpose}".encode()).derive(
        master
    )


def key_fingerprint(master: bytes) -> str:
    """A short public fingerprint (for audit logs): tells which key was used without revealing it."""
    return hmac.new(master, b"radcnn/fingerprint", hashlib.sha256).hexdigest()[:16]
