"""Encryption at rest: a chunked AES-256-GCM file format, key files and passphrases, whole trees, and the rules
by which every other layer reads and writes encrypted files.

    from radcnn.encryption import Secret, encrypt_path, decrypt_to_bytes
    encrypt_path("deid/", "deid.enc/", Secret.from_key_file("project.key"))

Modules: `files` (recognising, reading and writing `.rcenc` files; no `cryptography` import), `keys` (key files,
passphrases, derived sub-keys), `cipher` (the format), `tree` (files and folders). Names are imported on first use
so that recognising an encrypted file never loads `cryptography`.
"""

from __future__ import annotations

from radcnn.lazy import lazy_exports

_EXPORTS = {
    "KeyFileError": "radcnn.encryption.keys",
    "KeyNeededError": "radcnn.encryption.files",
    "Secret": "radcnn.encryption.keys",
    "decrypt_file": "radcnn.encryption.cipher",
    "decrypt_path": "radcnn.encryption.tree",
    "decrypt_to_bytes": "radcnn.encryption.cipher",
    "encrypt_bytes": "radcnn.encryption.cipher",
    "encrypt_file": "radcnn.encryption.cipher",
    "encrypt_path": "radcnn.encryption.tree",
    "generate_key_file": "radcnn.encryption.keys",
    "is_encrypted_file": "radcnn.encryption.files",
    "key_fingerprint": "radcnn.encryption.keys",
    "load_key_file": "radcnn.encryption.keys",
    "open_encrypted": "radcnn.encryption.cipher",
    "read_plaintext": "radcnn.encryption.files",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("radcnn.encryption", _EXPORTS, globals())
