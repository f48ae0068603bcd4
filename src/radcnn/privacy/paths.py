"""Output names of de-identified files: never derived from input names unless the user asks for a mirror.

* ``uid`` (default): ``<new StudyInstanceUID>/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm`` - the UIDs are
  the keyed replacements, so nothing of the input path or header survives in the name.
* ``mirror``: the input tree's folder and file names, except that every path component containing one of the
  file's own identifiers (PatientID, names, accession number, dates, the original UIDs, any value the profile
  removes or replaces) becomes a keyed token ``x<12 hex>`` (plus the file suffix). The token is an HMAC of the
  component under the project key, so ``PX000001/`` maps to the same token for every file below it and a
  patient's files stay together, but nobody without the key can recompute the original from the token.

A PACS export names folders after the PatientID and the study date (``PX000001/20210305/IM0001.dcm``); matching
is case-insensitive and also tries the common separators of names (``DOE^JANE`` as ``DOE_JANE``, ``DOE JANE``,
``DOEJANE``) and the written forms of dates that `iter_identifier_values` yields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pydicom.dataset import Dataset

from radcnn.privacy.config import Layout

_MIN_LENGTH = 3
_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def path_identifiers(ds: Dataset, values: Iterable[str]) -> list[str]:
    """Lower-cased strings whose presence in a path component makes it identifying, longest first."""
    found: set[str] = set()
    raw = list(values) + [str(ds.get(k, "") or "") for k in ("PatientID", "AccessionNumber", *_UID_KEYWORDS)]
    for value in raw:
        text = value.strip().lower()
        if len(text) < _MIN_LENGTH:
            continue
        found.add(text)
        if "^" in text or " " in text:
            parts = [p for p in re.split(r"[\^ ]+", text) if p]
            for sep in ("_", " ", "", "-", "."):
                found.add(sep.join(parts))
    return sorted((f for f in found if len(f) >= _MIN_LENGTH), key=len, reverse=True)


def path_token(key: bytes, component: str) -> str:
    return "x" + hmac.new(key, b"path:" + component.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def mirror_name(rel: Path, identifiers: list[str], key: bytes) -> Path:
    """`rel` with every component that contains one of `identifiers` replaced by its keyed token."""
    parts = list(PurePosixPath(rel.as_posix()).parts)
    out = []
    for i, part in enumerate(parts):
        low = part.lower()
        if any(ident in low for ident in identifiers):
            suffix = Path(part).suffix if i == len(parts) - 1 else ""
            if len(suffix) > 6 or any(ident in suffix.lower() for ident in identifiers):
                suffix = ""
            out.append(path_token(key, part) + suffix)
        else:
            out.append(part)
    return Path(*out)


def uid_name(ds: Dataset) -> Path:
    parts = [str(ds.get(k, "") or "unknown") for k in _UID_KEYWORDS]
    return Path(parts[0]) / parts[1] / f"{parts[2]}.dcm"


def output_name(deid: Dataset, rel: Path, layout: Layout, identifiers: list[str], key: bytes) -> Path:
    """Where the de-identified `deid` (read from input path `rel`) goes under the output root."""
    if layout is Layout.MIRROR:
        return mirror_name(rel, identifiers, key)
    return uid_name(deid)
