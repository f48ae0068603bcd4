"""The de-identification audit log: what was done to each file, with no original identifier or path in it.

Design (documented in docs/deidentification.md): the audit log is plain JSON lines, so it can sit inside the
output and be read without the key, and it is built so that it holds nothing identifying:

* a file is named by its ``source_id``, an HMAC of its input path under the project key (16 hex digits), never
  by the input path itself; where the file went is its output path (already de-identified);
* reasons (errors, quarantine) have the input path and each of its components replaced by ``<input>``;
* actions list attribute keywords with their sequence path, never values (see dataset.py); the wording is
  ``removed`` (X), ``emptied`` (Z: zero-length), ``replaced`` (D: dummy value), ``pseudonymised`` (replaced by
  the keyed pseudonym: PatientID, PatientName), ``uid_replaced`` (U), ``cleaned`` (C), ``kept`` (K);
* burned-in text boxes are listed by position and size only (the text read by OCR is never written).

Which input file a ``source_id`` stands for is recorded in the encrypted re-identification mapping
(``--mapping``) under ``sources``, and printed on the terminal for files that were not written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path, PurePosixPath

from radcnn.io import atomic_path

AUDIT_LOG_NAME = "deid_audit.jsonl"
_MIN_COMPONENT = 3


def source_id(path_key: bytes, rel: str) -> str:
    return hmac.new(path_key, b"source:" + rel.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def sanitize_reason(reason: str | None, src: Path, rel: str) -> str | None:
    """`reason` without the input path or any component of it (longest first)."""
    if reason is None:
        return None
    text = reason.replace(str(src), "<input>").replace(rel, "<input>")
    parts = {p for p in PurePosixPath(rel).parts if len(p) >= _MIN_COMPONENT}
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, "<input>")
    return text


def write_audit_log(path: Path, header: dict, records: list[dict]) -> None:
    """Write the run header line and one JSON line per file, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"run": header}) + "\n")
        for record in records:
            fh.write(json.dumps(record) + "\n")


def read_audit_log(path: str | Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[0]["run"], lines[1:]
