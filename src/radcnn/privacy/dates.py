"""Keyed per-patient date shifting (Retain Longitudinal Temporal Information with Modified Dates).

Every date of one patient moves back by the same whole number of days, derived from the project key and the
patient's original identity: intervals between a patient's studies, and the time of day, are preserved, while
the calendar dates are not recoverable without the key. Shifting by whole days keeps DA/TM pairs consistent
(a shift in seconds would have to carry across separate Date and Time attributes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from radcnn.encryption.keys import derive_subkey

DEFAULT_MAX_SHIFT_DAYS = 3650
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_LEGACY = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")  # ACR-NEMA style, still found in old archives
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{6}(?:\.\d{1,6})?|\d{2}|\d{4})?([+-]\d{4})?$")


def date_shift_days(key: bytes, patient_identity: str, max_days: int = DEFAULT_MAX_SHIFT_DAYS) -> int:
    """A shift in [-max_days, -1] days for one patient (never zero, always into the past)."""
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}")
    subkey = derive_subkey(key, "date-shift/v1")
    digest = hmac.new(subkey, patient_identity.encode("utf-8"), hashlib.sha256).digest()
    return -(1 + int.from_bytes(digest[:8], "big") % max_days)


def shift_date(value: str, days: int) -> str:
    """Shift a DA value (YYYYMMDD or legacy YYYY.MM.DD); raises ValueError for anything else."""
    text = value.strip()
    match = _DA.match(text) or _DA_LEGACY.match(text)
    if not match:
        raise ValueError(f"not a DICOM date: {len(text)} characters")
    day = dt.date(*(int(g) for g in match.groups())) + dt.timedelta(days=days)
    return day.strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str:
    """Shift the date part of a DT value, keeping its precision, time of day and UTC offset."""
    text = value.strip()
    match = _DT.match(text)
    if not match:
        raise ValueError(f"not a DICOM date-time: {len(text)} characters")
    year, month, day, time, offset = match.groups()
    # A partial date (year or year-month) shifts from its first day and keeps its precision.
    shifted = dt.date(int(year), int(month or 1), int(day or 1)) + dt.timedelta(days=days)
    out = f"{shifted.year:04d}"
    if month:
        out += f"{shifted.month:02d}"
    if day:
        out += f"{shifted.day:02d}"
    return out + (time or "") + (offset or "")


def shift_temporal(vr: str, value: str, days: int) -> str:
    """Shift a DA or DT value; TM values are returned unchanged (the shift is whole days)."""
    if vr == "DA":
        return shift_date(value, days)
    if vr == "DT":
        return shift_datetime(value, days)
    if vr == "TM":
        return value
    raise ValueError(f"VR {vr} is not a date or time")
