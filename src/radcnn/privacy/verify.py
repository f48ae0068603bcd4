"""`deid check`: scan de-identified files for anything the profile says must not survive.

Per file, at every sequence depth, it reports

* attributes whose action (under the same options) is X but that are present;
* attributes whose action is Z but that hold a value other than a dummy or a radcnn pseudonym;
* UIDs whose action is U but that are not under the 2.25 root radcnn replaces them with;
* private attributes (other than those declared safe);
* a missing PatientIdentityRemoved = YES, and BurnedInAnnotation = YES without the Clean Pixel Data code;
* every occurrence of a known identifier (names, MRNs ... given by the user) in any value, and anywhere in
  the raw file bytes (which also covers pixel-adjacent and binary attributes).

A clean report is evidence, not proof: a profile cannot guarantee that no identifying information remains
(PS3.15 says so itself), in particular text in pixels and free text in attributes the profile keeps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radcnn.errors import ConfigError, DeidentificationError
from radcnn.privacy.actions import DUMMY_VALUES
from radcnn.privacy.config import SafePrivate
from radcnn.privacy.deidentify import AUDIT_LOG_NAME, read_dicom
from radcnn.privacy.profile import (
    CLEAN_PIXEL_DATA_CODE,
    Action,
    Option,
    annex_e_profile,
    attribute_type,
    option_for_code,
    parse_options,
)
from radcnn.privacy.uids import UID_ROOT


@dataclass(frozen=True)
class Finding:
    path: str  # file, relative to the checked folder
    location: str  # attribute path, or "file" / "file bytes"
    problem: str


@dataclass
class CheckReport:
    root: Path
    files_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def files_with_findings(self) -> int:
        return len({f.path for f in self.findings})


def _name(tag) -> str:
    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def _values(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    return [str(value)]


def _is_dummy(text: str) -> bool:
    text = text.strip()
    return not text or text.startswith("RC-") or text in {str(v) for v in DUMMY_VALUES.values()}


def declared_options(ds: Dataset) -> frozenset[Option]:
    """The options a file declares in its DeidentificationMethodCodeSequence."""
    codes = (str(item.get("CodeValue", "")) for item in ds.get("DeidentificationMethodCodeSequence", []) or [])
    return frozenset(o for o in (option_for_code(c) for c in codes) if o is not None)


class _Checker:
    def __init__(self, options: frozenset[Option] | None, safe: Iterable[SafePrivate], identifiers: list[str]):
        self.profile = annex_e_profile()
        self.fixed_options = options  # None: each file is checked against the options it declares
        self.options: frozenset[Option] = options or frozenset()
        self.safe = frozenset(s.key() for s in safe)
        self.identifiers = identifiers
        self.lowered = [i.lower() for i in identifiers]
        self.seen: set[int] = set()  # identifiers found in values of the current file

    def dataset(self, ds: Dataset, sop_class: str | None, prefix: str, out: list[tuple[str, str]]) -> None:
        for elem in ds:
            tag, path = elem.tag, prefix + _name(elem.tag)
            if tag.is_private:
                if not self._safe(ds, tag):
                    out.append((path, "private attribute present"))
                    continue
            else:
                rule = self.profile.lookup(tag)
                if rule is not None:
                    action = rule.action(self.options, attribute_type(tag, sop_class) if not prefix else None)
                    self._rule_finding(elem, action, path, out)
            if elem.VR == "SQ":
                for item in elem.value or []:
                    self.dataset(item, sop_class, path + "/", out)
                continue
            for text in _values(elem.value) if elem.tag != 0x7FE00010 else []:
                low = text.lower()
                for i, ident in enumerate(self.lowered):
                    if ident in low:
                        self.seen.add(i)
                        out.append((path, f"known identifier #{i + 1} ({self.identifiers[i]!r}) in the value"))

    def _rule_finding(self, elem, action: Action, path: str, out: list[tuple[str, str]]) -> None:
        if action is Action.REMOVE:
            out.append((path, "present, but the profile removes it (X)"))
        elif action is Action.EMPTY and elem.VR != "SQ" and not all(_is_dummy(v) for v in _values(elem.value)):
            out.append((path, "holds a value, but the profile empties it (Z)"))
        elif action is Action.UID and any(v and not v.startswith(UID_ROOT) for v in _values(elem.value)):
            out.append((path, "UID not replaced (U): not under the 2.25 root"))

    def _safe(self, ds: Dataset, tag) -> bool:
        if not self.safe or Option.RETAIN_SAFE_PRIVATE not in self.options:
            return False
        if 0x0010 <= tag.element <= 0x00FF:  # a private creator: safe when it owns a safe attribute
            creator = str(ds[tag].value).strip()
            return any(g == tag.group and c == creator for g, c, _ in self.safe)
        creator_tag = (tag.group << 16) | (tag.element >> 8)
        if tag.element < 0x1000 or creator_tag not in ds:
            return False
        return (tag.group, str(ds[creator_tag].value).strip(), tag.element & 0xFF) in self.safe

    def top_level(self, ds: Dataset, out: list[tuple[str, str]]) -> None:
        if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
            out.append(("PatientIdentityRemoved", "missing or not YES"))
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            codes = {str(i.get("CodeValue", "")) for i in ds.get("DeidentificationMethodCodeSequence", [])}
            if CLEAN_PIXEL_DATA_CODE[0] not in codes:
                out.append(("BurnedInAnnotation", "YES: identifying text may be burned into the pixels"))
        meta = getattr(ds, "file_meta", None)
        if meta is not None and meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID"):
            out.append(("MediaStorageSOPInstanceUID", "differs from SOPInstanceUID"))


def check_file(path: Path, checker: _Checker, rel: str) -> list[Finding]:
    try:
        ds = read_dicom(path)
    except DeidentificationError as exc:
        return [Finding(rel, "file", f"cannot be verified: {exc}")]
    found: list[tuple[str, str]] = []
    checker.seen = set()
    checker.options = checker.fixed_options if checker.fixed_options is not None else declared_options(ds)
    checker.top_level(ds, found)
    sop_class = str(ds.get("SOPClassUID", "") or "") or None
    try:
        checker.dataset(ds, sop_class, "", found)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, struct.error) as exc:
        # A malformed element must not hide the rest of the report.
        found.append(("file", f"could not be fully parsed ({type(exc).__name__}: {exc})"))
    # The raw bytes catch what value decoding may hide (binary VRs, other character sets, trailing data).
    data = path.read_bytes().lower()
    for i, ident in enumerate(checker.lowered):
        if i not in checker.seen and ident.encode("utf-8") in data:
            found.append(("file bytes", f"known identifier #{i + 1} ({checker.identifiers[i]!r}) in the raw bytes"))
    return [Finding(rel, location, problem) for location, problem in found]


def check_tree(
    root: str | Path,
    identifiers: Iterable[str] = (),
    *,
    options: Iterable[str | Option] | None = None,
    safe_private: Iterable[SafePrivate] = (),
) -> CheckReport:
    """Check every file under `root` (a folder or one file); the de-identification audit log is skipped.

    `options=None` checks each file against the profile options it declares in its method code sequence;
    otherwise every file is checked against exactly `options`. Private attributes listed in `safe_private`
    are accepted when the file (or `options`) includes retain_safe_private."""
    root = Path(root)
    if not root.exists():
        raise DeidentificationError(f"{root}: nothing to check (no such file or directory)")
    idents = [i.strip() for i in identifiers if i.strip()]
    short = [i for i in idents if len(i) < 3]
    if short:
        raise ConfigError(f"identifiers must have at least 3 characters (too short: {short}); they would match noise")
    fixed = None if options is None else parse_options(options)
    checker = _Checker(fixed, safe_private, idents)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    report = CheckReport(root)
    for path in files:
        if path.name == AUDIT_LOG_NAME:
            continue
        rel = path.name if path == root else str(path.relative_to(root))
        report.findings.extend(check_file(path, checker, rel))
        report.files_checked += 1
    return report


def read_identifiers(path: str | Path) -> list[str]:
    """Known identifiers, one per line (blank lines and lines starting with # are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"identifier list {path} not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
