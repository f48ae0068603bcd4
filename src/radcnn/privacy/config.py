"""What a de-identification run does, as one frozen, validated dataclass (the CLI builds it from its flags)."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from radcnn.errors import ConfigError
from radcnn.privacy.dates import DEFAULT_MAX_SHIFT_DAYS
from radcnn.privacy.profile import Option, parse_options


class BurnedInPolicy(enum.StrEnum):
    """What to do with an image that has, or may have, text burned into its pixels."""

    REFUSE = "refuse"  # quarantine it with the reason (default)
    DETECT = "detect"  # find text with Tesseract OCR, blank every text box, then write it (see ocr.py)
    BLANK = "blank"  # blank the given rectangles, then write it (adds the Clean Pixel Data code)
    ALLOW = "allow"  # write it unchanged, flagged in the audit log for manual review


class OnError(enum.StrEnum):
    FAIL = "fail"
    SKIP = "skip"


class Layout(enum.StrEnum):
    UID = "uid"  # <new StudyInstanceUID>/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm (default)
    MIRROR = "mirror"  # the input tree's names, identifying components replaced by keyed tokens (paths.py)

    @classmethod
    def _missing_(cls, value: object) -> Layout | None:
        return cls.MIRROR if value == "same" else None  # the name of the mirrored layout before 0.2


@dataclass(frozen=True)
class Rectangle:
    """A pixel region [x0, x1) x [y0, y1): x counts columns, y counts rows, (0, 0) is the top-left pixel."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        if min(self.x0, self.y0) < 0 or self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ConfigError(f"rectangle {self.as_text()} must have 0 <= x0 < x1 and 0 <= y0 < y1")

    @classmethod
    def parse(cls, text: str) -> Rectangle:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4 or not all(re.fullmatch(r"\d+", p) for p in parts):
            raise ConfigError(f"rectangle {text!r}: expected four non-negative integers x0,y0,x1,y1")
        return cls(*(int(p) for p in parts))

    def as_text(self) -> str:
        return f"{self.x0},{self.y0},{self.x1},{self.y1}"


@dataclass(frozen=True)
class SafePrivate:
    """One private attribute declared safe: group, private creator, and the element's low byte (xxEE -> EE)."""

    group: int
    creator: str
    element: int

    def __post_init__(self) -> None:
        if self.group % 2 == 0 or not 0x0009 <= self.group <= 0xFFFF:
            raise ConfigError(f"safe private group {self.group:04X} must be an odd group number")
        if not 0 <= self.element <= 0xFF:
            raise ConfigError(f"safe private element {self.element:X} must be the low byte (00-FF)")
        if not self.creator.strip():
            raise ConfigError("a safe private attribute needs its private creator")

    @classmethod
    def parse(cls, text: str) -> SafePrivate:
        """`GGGG,CREATOR,EE` e.g. `0019,GEMS_ACQU_01,8B` (hex group and element byte)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3:
            raise ConfigError(f"safe private entry {text!r}: expected GGGG,CREATOR,EE")
        try:
            return cls(int(parts[0], 16), parts[1], int(parts[2], 16))
        except ValueError:
            raise ConfigError(f"safe private entry {text!r}: group and element must be hexadecimal") from None

    def key(self) -> tuple[int, str, int]:
        return (self.group, self.creator.strip(), self.element)


@dataclass(frozen=True)
class DeidConfig:
    """Options of PS3.15 Table E.1-1 plus radcnn's policies. The default is the basic profile alone."""

    options: frozenset[Option] = frozenset()
    pseudonymise: bool = True  # PatientID/PatientName become a keyed pseudonym instead of empty
    burned_in: BurnedInPolicy = BurnedInPolicy.REFUSE
    blank_rectangles: tuple[Rectangle, ...] = ()
    flag_manufacturers: tuple[str, ...] = ()  # extra manufacturer/model substrings known to burn in text
    safe_private: tuple[SafePrivate, ...] = ()
    max_shift_days: int = DEFAULT_MAX_SHIFT_DAYS
    on_error: OnError = OnError.FAIL
    layout: Layout = Layout.UID
    workers: int = 1
    keep_markers: tuple[str, ...] = ()  # burned-in words kept by --burned-in detect (laterality: "L", "R")
    ocr_min_confidence: float = 40.0  # Tesseract word confidence (0-100) from which a box counts as text

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", parse_options(self.options))
        object.__setattr__(self, "burned_in", _enum(BurnedInPolicy, self.burned_in, "burned_in"))
        object.__setattr__(self, "on_error", _enum(OnError, self.on_error, "on_error"))
        object.__setattr__(self, "layout", _enum(Layout, self.layout, "layout"))
        object.__setattr__(self, "blank_rectangles", tuple(self.blank_rectangles))
        object.__setattr__(self, "safe_private", tuple(self.safe_private))
        object.__setattr__(self, "flag_manufacturers", tuple(self.flag_manufacturers))
        object.__setattr__(self, "keep_markers", tuple(m.strip().upper() for m in self.keep_markers if m.strip()))
        long_markers = [m for m in self.keep_markers if len(m) > 3 or not m.isalpha()]
        if long_markers:
            raise ConfigError(f"keep_markers are short laterality/view markers (<= 3 letters); got {long_markers}")
        if not 0.0 <= self.ocr_min_confidence <= 100.0:
            raise ConfigError(f"ocr_min_confidence must be in [0, 100], got {self.ocr_min_confidence}")
        if self.burned_in is BurnedInPolicy.BLANK and not self.blank_rectangles:
            raise ConfigError("burned_in='blank' needs at least one rectangle (x0,y0,x1,y1) to blank")
        if self.blank_rectangles and self.burned_in is not BurnedInPolicy.BLANK:
            raise ConfigError("blank rectangles were given but burned_in is not 'blank'")
        has_safe = Option.RETAIN_SAFE_PRIVATE in self.options
        if has_safe and not self.safe_private:
            raise ConfigError("retain_safe_private needs the list of safe private attributes (GGGG,CREATOR,EE)")
        if self.safe_private and not has_safe:
            raise ConfigError("safe private attributes were listed but the retain_safe_private option is off")
        if not 1 <= self.max_shift_days <= 36500:
            raise ConfigError(f"max_shift_days must be between 1 and 36500, got {self.max_shift_days}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")

    def method_description(self) -> list[str]:
        """Values for DeidentificationMethod (LO, 64 characters each)."""
        values = [f"radcnn {_version()}: PS3.15 E.1-1 Basic Profile"]
        values += [o.code[1][:64] for o in sorted(self.options)]
        return values


@functools.cache
def _version() -> str:
    try:
        return metadata.version("radcnn")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "dev"


def _enum(kind: type[enum.StrEnum], value: object, name: str) -> enum.StrEnum:
    try:
        return kind(str(value).lower())
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {valid}") from None


def parse_safe_private(lines: Iterable[str]) -> tuple[SafePrivate, ...]:
    """Read safe private entries, one `GGGG,CREATOR,EE` per line (blank lines and # comments ignored)."""
    entries = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            entries.append(SafePrivate.parse(text))
    return tuple(entries)
