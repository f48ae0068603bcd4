"""Patient privacy: DICOM de-identification to PS3.15 Annex E, verification, and encryption at rest.

    from radcnn.privacy import DeidConfig, deidentify_tree, check_tree, load_key_file

    key = load_key_file("project.key")                      # `radcnn keygen project.key`
    summary = deidentify_tree("raw/", "deid/", key, DeidConfig(options={"retain_modified_dates"}))
    report = check_tree("deid/", identifiers=["Doe^Jane"])

    from radcnn.privacy import Secret, encrypt_path, decrypt_to_bytes
    encrypt_path("deid/", "deid.enc/", Secret.from_key_file("project.key"))
    state = torch.load(io.BytesIO(decrypt_to_bytes("model.ckpt.rcenc", key)), weights_only=True)

Modules: profile (Table E.1-1 as data + action resolution), actions (pure value replacement), uids, dates,
dataset (the sequence walker), engine (`Deidentifier`), deidentify (files and trees), pixels (burned-in text),
verify (`deid check`), keys, encryption (the chunked AES-GCM format), encrypted_tree (files and folders).
"""

from radcnn.privacy.config import BurnedInPolicy, DeidConfig, Layout, OnError, Rectangle, SafePrivate
from radcnn.privacy.deidentify import DeidSummary, FileResult, deidentify_file, deidentify_tree
from radcnn.privacy.encrypted_tree import decrypt_path, encrypt_path
from radcnn.privacy.encryption import (
    decrypt_file,
    decrypt_to_bytes,
    encrypt_bytes,
    encrypt_file,
    is_encrypted,
    open_encrypted,
)
from radcnn.privacy.engine import Deidentifier
from radcnn.privacy.keys import KeyFileError, Secret, generate_key_file, key_fingerprint, load_key_file
from radcnn.privacy.profile import Action, Option, annex_e_profile
from radcnn.privacy.verify import CheckReport, Finding, check_tree

__all__ = [
    "Action",
    "BurnedInPolicy",
    "CheckReport",
    "DeidConfig",
    "DeidSummary",
    "Deidentifier",
    "FileResult",
    "Finding",
    "KeyFileError",
    "Layout",
    "OnError",
    "Option",
    "Rectangle",
    "SafePrivate",
    "Secret",
    "annex_e_profile",
    "check_tree",
    "decrypt_file",
    "decrypt_path",
    "decrypt_to_bytes",
    "deidentify_file",
    "deidentify_tree",
    "encrypt_bytes",
    "encrypt_file",
    "encrypt_path",
    "generate_key_file",
    "is_encrypted",
    "key_fingerprint",
    "load_key_file",
    "open_encrypted",
]
