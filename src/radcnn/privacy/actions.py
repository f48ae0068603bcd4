"""The value an attribute gets under a profile action: one pure function plus the text scrubber used by C.

`new_value(tag, vr, value, action, ctx)` knows nothing about datasets, files or recursion (sequences are the
walker's business in `dataset.py`); everything keyed (UIDs, pseudonyms, date shift) arrives through `ctx`, so
the same inputs always give the same output and the function is tested row by row.

Clean (C) means "replace with values of similar meaning known not to contain identifying information"; what
radcnn can do automatically depends on the VR:

    DA, DT   shifted by the patient's date offset (needs the modified-dates option)
    TM       kept (the offset is whole days)
    AE       replaced by a keyed pseudonym, consistent across files
    text     known identifiers of the same object (names, IDs, birth date), digit runs of 5+ digits, e-mail
             addresses and date-like strings are replaced by "***"
    other    cannot be cleaned: the basic profile action applies instead
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.multival import MultiValue

from radcnn.privacy.dates import shift_temporal
from radcnn.privacy.profile import Action


class _Removed:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Removed()

TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT", "CS"})
STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
NUMBER_VRS = frozenset({"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV", "AT"})

# Dummy values (action D): valid for the VR, obviously not real, short enough for every length limit.
DUMMY_VALUES: Mapping[str, Any] = {
    "AE": "ANONYMIZED",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000.000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000.00",
    "UC": "ANONYMIZED",
    "UR": "urn:radcnn:anonymized",
    "UT": "ANONYMIZED",
    **{vr: b"\x00\x00" for vr in BINARY_VRS},
    **{vr: 0 for vr in NUMBER_VRS},
}

REDACTED = "***"
_GENERIC_PATTERNS = (
    r"\d{5,}",  # record numbers, phone numbers, accession numbers
    r"[\w.+-]+@[\w-]+\.[\w.-]+",  # e-mail addresses
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b",  # dates written in free text
)


class TextScrubber:
    """Replaces known identifiers and identifier-shaped substrings in free text by "***"."""

    def __init__(self, identifiers: Iterable[str] = (), *, min_length: int = 3):
        self._words = sorted({w.strip() for w in identifiers if w and len(w.strip()) >= min_length}, key=len)
        self._pattern: re.Pattern[str] | None = None  # compiled on first use: most objects never need it

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            literal = [re.escape(w) for w in reversed(self._words)]  # longest first
            self._pattern = re.compile("|".join(literal + list(_GENERIC_PATTERNS)), re.IGNORECASE)
        return self._pattern.sub(REDACTED, text)


@dataclass(frozen=True)
class ValueContext:
    """Everything keyed or per-object that `new_value` needs."""

    uid_map: Callable[[str], str]
    scrub: Callable[[str], str]
    pseudonym: Callable[[str, str], str]  # (purpose, original) -> keyed pseudonym
    shift_days: int | None = None  # None: dates cannot be shifted (modified-dates option off)
    replacements: Mapping[int, str] = field(default_factory=dict)  # tag -> pseudonym (PatientID, PatientName)


def _map_values(value: Any, fn: Callable[[str], Any]) -> Any:
    if isinstance(value, MultiValue | list | tuple):
        return [fn(str(v)) for v in value]
    return fn(str(value))


def _empty(vr: str) -> Any:
    if vr in BINARY_VRS:
        return b""
    if vr in NUMBER_VRS:
        return None
    return ""


def _clean(tag: int, vr: str, value: Any, ctx: ValueContext, fallback: Action) -> Any:
    if value is None or value == "" or value == b"":
        return value
    if vr in ("DA", "DT", "TM"):
        if ctx.shift_days is None:
            return new_value(tag, vr, value, fallback, ctx)
        try:
            return _map_values(value, lambda v: shift_temporal(vr, v, ctx.shift_days))
        except ValueError:
            # An unparseable date cannot be shifted; the basic action is the safe alternative.
            return new_value(tag, vr, value, fallback, ctx)
    if vr == "AE":
        return _map_values(value, lambda v: ctx.pseudonym("ae", v)[:16])
    if vr in TEXT_VRS:
        return _map_values(value, ctx.scrub)
    return new_value(tag, vr, value, fallback, ctx)


def new_value(
    tag: int, vr: str, value: Any, action: Action, ctx: ValueContext, *, fallback: Action = Action.REMOVE
) -> Any:
    """The replacement value of one non-sequence attribute, or `REMOVE`.

    `fallback` is the basic-profile action used when a clean (C) is impossible for the VR or value."""
    if action is Action.REMOVE:
        return REMOVE
    if action is Action.KEEP:
        return value
    if action is Action.EMPTY:
        return ctx.replacements.get(tag, _empty(vr))
    if action is Action.DUMMY:
        if tag in ctx.replacements:
            return ctx.replacements[tag]
        if vr == "UI":
            return _map_values(value, ctx.uid_map) if value else value
        if vr not in DUMMY_VALUES:
            return REMOVE  # no conformant dummy for this VR: removing is never less private
        return DUMMY_VALUES[vr]
    if action is Action.UID:
        if vr != "UI":
            return new_value(tag, vr, value, Action.DUMMY, ctx)
        return _map_values(value, ctx.uid_map) if value else value
    if action is Action.CLEAN:
        if fallback is Action.CLEAN:
            raise ValueError("the fallback of a clean action cannot itself be clean")
        return _clean(tag, vr, value, ctx, fallback)
    raise ValueError(f"unknown action {action!r}")
