"""`deid check`: scan de-identified files for anything the profile says must not survive.

Per file, at every sequence depth, it reports

* attributes whose action (under the same options) is X but that are present;
* attributes whose action is Z but that hold a value other than a dummy or a radcnn pseudonym;
* UIDs whose action is U but that are not under the 2.25 root radcnn replaces them with;
* private attributes (other than those declared safe);
* a missing PatientIdentityRemoved = YES, and BurnedInAnnotation = YES without the Clean Pixel Data code;
* every occurrence of a known identifier (names, MRNs ... given by the user) in any value, and anywhere in
  the raw file bytes (which also covers pixel-adjacent and binary attributes);
* and, for every file in the folder whatever it is (the audit log, a DICOMDIR, Thumbs.db, notes): a known
  identifier in any file or folder name on its path below the checked folder, and in its bytes (as UTF-8,
  and as UTF-16 little-endian, which Windows files use); a file that is not DICOM is reported as such only
  when it cannot be the audit log.

An empty folder is an error, not a clean result.

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
from radcnn.privacy.audit import AUDIT_LOG_NAME
from radcnn.privacy.config import SafePrivate
from radcnn.privacy.profile import (
    CLEAN_PIXEL_DATA_CODE,
    Action,
    Option,
    annex_e_profile,
    attribute_type,
    option_for_code,
    parse_options,
)
from radcnn.privacy.reading import read_dicom
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


def _byte_findings(data: bytes, checker: _Checker, skip: set[int]) -> list[tuple[str, str]]:
    data = data.lower()
    found = []
    for i, ident in enumerate(checker.lowered):
        if i in skip:
            continue
        if ident.encode("utf-8") in data or ident.encode("utf-16-le") in data:
            found.append(("file bytes", f"known identifier #{i + 1} ({checker.identifiers[i]!r}) in the raw bytes"))
    return found


def _name_findings(rel: str, checker: _Checker) -> list[tuple[str, str]]:
    low = rel.lower()
    return [
        ("file name", f"known identifier #{i + 1} ({checker.identifiers[i]!r}) in the path")
        for i, ident in enumerate(checker.lowered)
        if ident in low
    ]


def check_file(path: Path, checker: _Checker, rel: str) -> list[Finding]:
    found = _name_findings(rel, checker)
    if path.name == AUDIT_LOG_NAME or path.name.endswith("." + AUDIT_LOG_NAME):
        found += _byte_findings(path.read_bytes(), checker, set())
        return [Finding(rel, location, problem) for location, problem in found]
    try:
        ds = read_dicom(path)
    except DeidentificationError as exc:
        found.append(("file", f"not a de-identified DICOM file: {exc}"))
        found += _byte_findings(path.read_bytes(), checker, set())
        return [Finding(rel, location, problem) for location, problem in found]
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
    found += _byte_findings(path.read_bytes(), checker, checker.seen)
    return [Finding(rel, location, problem) for location, problem in found]


def check_tree(
    root: str | Path,
    identifiers: Iterable[str] = (),
    *,
    options: Iterable[str | Option] | None = None,
    safe_private: Iterable[SafePrivate] = (),
) -> CheckReport:
    """Check every file under `root` (a folder or one file): DICOM attributes, names and bytes of every file.

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
    if not files:
        raise DeidentificationError(f"{root}: nothing to check (the folder holds no files)")
    report = CheckReport(root)
    for path in files:
        rel = path.name if path == root else path.relative_to(root).as_posix()
        report.findings.extend(check_file(path, checker, rel))
        report.files_checked += 1
    if root.is_dir():  # empty folders have names too
        for folder in sorted(p for p in root.rglob("*") if p.is_dir() and not any(p.iterdir())):
            rel = folder.relative_to(root).as_posix()
            report.findings.extend(Finding(rel, loc, problem) for loc, problem in _name_findings(rel, checker))
    return report


def read_identifiers(path: str | Path) -> list[str]:
    """Known identifiers, one per line (blank lines and lines starting with # are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"identifier list {path} not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
