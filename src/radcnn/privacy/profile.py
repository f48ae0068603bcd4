"""The Basic Application Level Confidentiality Profile (PS3.15 Table E.1-1) as data, and how an action is chosen.

Actions (PS3.15 E.3.1): D replace with a dummy value, Z replace with a zero-length (or dummy) value, X remove,
K keep (sequences are still cleaned inside), C clean (replace with values of similar meaning that carry no
identity), U replace a UID consistently. Combined codes depend on the attribute's Type in the object's IOD:

    Z/D      Z, or D when Type 1              X/Z    X, or Z when Type 1 or 2
    X/D      X, or D when Type 1 or 2         X/Z/D  X, Z when Type 2, D when Type 1
    X/Z/U*   X, Z when Type 2, U (keep the sequence, replace the UIDs inside) when Type 1

Where radcnn does not know the Type of an attribute in the object's IOD it assumes it is optional (Type 3),
which removes more, never less. Options replace the basic action of the rows they name; when two selected
options name a row, C wins over K (the option that asks to modify a value must not be undone by one that keeps).
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

from radcnn.errors import ConfigError


class Action(enum.StrEnum):
    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    KEEP = "K"
    CLEAN = "C"
    UID = "U"


class Option(enum.StrEnum):
    """Profile options radcnn implements, with their CID 7050 code (written to DeidentificationMethodCodeSequence)."""

    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    RETAIN_UIDS = "retain_uids"
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    RETAIN_FULL_DATES = "retain_full_dates"
    RETAIN_MODIFIED_DATES = "retain_modified_dates"
    CLEAN_DESCRIPTORS = "clean_descriptors"
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"

    @property
    def code(self) -> tuple[str, str]:
        return _OPTION_CODES[self]


BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA_CODE = ("113101", "Clean Pixel Data Option")
_OPTION_CODES = {
    Option.CLEAN_STRUCTURED_CONTENT: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_FULL_DATES: ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.RETAIN_MODIFIED_DATES: ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}


def option_for_code(code: str) -> Option | None:
    """The option a CID 7050 code value stands for (None for 113100, 113101 and unknown codes)."""
    return next((o for o, (value, _) in _OPTION_CODES.items() if value == code), None)


def parse_options(names: Iterable[str | Option]) -> frozenset[Option]:
    """Option names (as in the CLI, `-` or `_`) -> a validated set; unknown or conflicting ones fail clearly."""
    chosen = set()
    for name in names:
        key = str(name).strip().lower().replace("-", "_")
        try:
            chosen.add(Option(key))
        except ValueError:
            valid = ", ".join(o.value for o in Option)
            raise ConfigError(f"unknown de-identification option {name!r}; valid options: {valid}") from None
    if {Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES} <= chosen:
        raise ConfigError("retain_full_dates and retain_modified_dates exclude each other; choose one")
    return frozenset(chosen)


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1."""

    tag: str  # 8 hex characters, "x" = wildcard nibble, or "ggggeeee" for the private-attribute row
    name: str
    keyword: str
    basic: str
    options: Mapping[str, str] = field(default_factory=dict)
    std_comp_iod: bool = False

    def action(self, options: frozenset[Option], attribute_type: int | None) -> Action:
        """The action for this row under `options`, resolving combined codes by the attribute's Type."""
        chosen = {self.options[o.value] for o in options if o.value in self.options}
        if chosen:
            return Action.CLEAN if "C" in chosen else Action.KEEP
        return resolve_basic(self.basic, attribute_type)


def resolve_basic(code: str, attribute_type: int | None) -> Action:
    """Resolve a basic-profile code; `attribute_type` is 1, 2, 3 or None (unknown, treated as 3)."""
    if len(code) == 1:
        return Action(code)
    t = attribute_type or 3
    if code == "Z/D":
        return Action.DUMMY if t == 1 else Action.EMPTY
    if code == "X/Z":
        return Action.EMPTY if t in (1, 2) else Action.REMOVE
    if code == "X/D":
        return Action.DUMMY if t in (1, 2) else Action.REMOVE
    if code == "X/Z/D":
        return {1: Action.DUMMY, 2: Action.EMPTY}.get(t, Action.REMOVE)
    if code == "X/Z/U*":
        return {1: Action.UID, 2: Action.EMPTY}.get(t, Action.REMOVE)
    raise ConfigError(f"unknown profile action code {code!r}")


# The Type (PS3.3) of combined-code attributes where it is 1 or 2 in the image IODs radcnn reads; everything
# else resolves as Type 3. DX-family objects (DX, MG, IO) make Content Date/Time Type 1 and include the
# Acquisition Context module, whose sequence is Type 2.
_TYPE_IN_COMMON_IODS = {
    0x00100020: 2,  # Patient ID (Patient module)
    0x00080023: 2,  # Content Date (General Image, 2C)
    0x00080033: 2,  # Content Time (General Image, 2C)
    0x00180010: 2,  # Contrast/Bolus Agent (Contrast/Bolus module)
    0x00700084: 2,  # Content Creator's Name (presentation states)
}
_DX_FAMILY = {
    "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.2",
    "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3",
    "1.2.840.10008.5.1.4.1.1.1.3.1",
}
_TYPE_IN_DX = {0x00080023: 1, 0x00080033: 1, 0x00400555: 2}


def attribute_type(tag: int, sop_class_uid: str | None) -> int | None:
    """Type of a top-level attribute in the IOD of `sop_class_uid` as far as radcnn knows (None = unknown)."""
    if sop_class_uid in _DX_FAMILY and tag in _TYPE_IN_DX:
        return _TYPE_IN_DX[tag]
    return _TYPE_IN_COMMON_IODS.get(tag)


class ConfidentialityProfile:
    """Table E.1-1 with fast lookup by tag (exact tags, group-mask rows, the private-attribute row)."""

    def __init__(self, rows: Iterable[Rule]):
        self.rows = tuple(rows)
        self._exact: dict[int, Rule] = {}
        self._masked: list[tuple[int, int, Rule]] = []
        self.private_rule: Rule | None = None
        for rule in self.rows:
            if rule.tag == "ggggeeee":
                self.private_rule = rule
            elif "x" in rule.tag:
                mask = int("".join("0" if c == "x" else "f" for c in rule.tag), 16)
                self._masked.append((mask, int(rule.tag.replace("x", "0"), 16), rule))
            else:
                self._exact[int(rule.tag, 16)] = rule
        if self.private_rule is None:
            raise ConfigError("the confidentiality profile table has no private-attribute row")

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, tag: int) -> Rule | None:
        """The row governing `tag`; private tags (odd groups) all map to the private-attribute row."""
        if (tag >> 16) % 2 == 1:
            return self.private_rule
        rule = self._exact.get(tag)
        if rule is not None:
            return rule
        for mask, value, masked_rule in self._masked:
            if tag & mask == value:
                return masked_rule
        return None

    def action(self, tag: int, options: frozenset[Option], sop_class_uid: str | None = None) -> Action | None:
        rule = self.lookup(tag)
        return None if rule is None else rule.action(options, attribute_type(tag, sop_class_uid))


def _rule_from_json(row: Mapping) -> Rule:
    return Rule(
        tag=row["tag"],
        name=row["name"],
        keyword=row.get("keyword", ""),
        basic=row["basic"],
        options=dict(row.get("options", {})),
        std_comp_iod=bool(row.get("std_comp_iod", False)),
    )


@functools.cache
def annex_e_profile() -> ConfidentialityProfile:
    """The packaged Table E.1-1 (loaded once per process)."""
    text = resources.files("radcnn.privacy").joinpath("annex_e_table.json").read_text(encoding="utf-8")
    return ConfidentialityProfile(_rule_from_json(r) for r in json.loads(text)["rows"])
