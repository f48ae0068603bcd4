"""`radcnn deid score OUT --answer-key KEY`: the percentage of required de-identification actions done right.

The MICCAI 2024 MIDI-B challenge validated submissions by comparing every de-identified file with an answer key
of required actions and reporting the fraction performed correctly (its teams scored 97.91-99.93 %). This
scorer does the same for a key made by `benchmark.make_benchmark` (action types are listed there): each action
is one check, a file that cannot be found in the output fails all of its actions, and the report gives the
percentage overall, per action type and per file.

Consistency is scored across files: a date shift must be the same for every date of one patient (in every
file), and one original UID must map to one replacement everywhere. Pixel checks read the input file named in
the key (the key's ``input`` folder, next to the key) to compare with.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from radcnn.errors import ConfigError, DeidentificationError
from radcnn.privacy.benchmark import KEY_FORMAT, PRIVATE_GROUP
from radcnn.privacy.reading import has_dicm_prefix

logger = logging.getLogger(__name__)

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
RETAINED_PIXELS = 0.99
BLANKED_UNIFORM = 0.97


@dataclass
class ScoreReport:
    """Correct / required actions, overall, per action type and per file."""

    per_type: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    per_file: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[dict] = field(default_factory=list)  # {file, action, attribute/box, why}

    def add(self, rel: str, action: dict, ok: bool, why: str = "") -> None:
        for table, key in ((self.per_type, action["action"]), (self.per_file, rel)):
            table[key][0] += int(ok)
            table[key][1] += 1
        if not ok:
            what = action.get("attribute") or action.get("box") or action.get("region")
            self.failures.append({"file": rel, "action": action["action"], "what": what, "why": why})

    @property
    def correct(self) -> int:
        return sum(c for c, _ in self.per_type.values())

    @property
    def required(self) -> int:
        return sum(n for _, n in self.per_type.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.correct / self.required if self.required else 0.0

    def as_dict(self) -> dict:
        def table(rows: dict) -> dict:
            return {k: {"correct": c, "required": n, "percent": round(100.0 * c / n, 3)} for k, (c, n) in rows.items()}

        return {
            "percent": round(self.percent, 3),
            "correct": self.correct,
            "required": self.required,
            "per_action": table(dict(sorted(self.per_type.items()))),
            "per_file": table(dict(sorted(self.per_file.items()))),
            "failures": self.failures,
        }


def _value(ds: Dataset, attribute: str):
    if attribute.startswith("("):
        tag = (PRIVATE_GROUP << 16) | int(attribute[6:10], 16)
        return ds[tag].value if tag in ds else None
    return ds[attribute].value if attribute in ds else None


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(text).strip(), "%Y%m%d").date()
    except ValueError:
        return None


def _index_outputs(out: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if not has_dicm_prefix(path):  # the audit log, anything else that is not a Part 10 file
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["InstanceNumber"])
        except Exception as exc:  # noqa: BLE001 - a damaged output is scored as missing
            logger.warning("%s: cannot be read (%s); its actions count as failed", path, exc)
            continue
        if "InstanceNumber" in ds and ds.InstanceNumber is not None:
            found[int(ds.InstanceNumber)] = path
    return found


def _header_check(action: dict, value, shifts: dict, uids: dict) -> tuple[bool, str]:
    kind, original = action["action"], action.get("original", "")
    text = "" if value is None else str(value)
    if kind == "removed":
        return value is None, "still present"
    if kind == "emptied":
        return value is not None and text.strip() == "", "absent" if value is None else "holds a value"
    if kind == "retained":
        return text == original, "changed"
    if kind == "replaced":
        return bool(text) and text != original and original not in text, "missing or unchanged"
    if kind == "date_shifted":
        before, after = _date(original), _date(text)
        if before is None or after is None or after == before:
            return False, "not a shifted date"
        shifts.setdefault((action["patient"], action["attribute"]), set()).add((after - before).days)
        return True, ""
    if kind == "uid_changed":
        if not text or text == original or not _UID.match(text) or len(text) > 64:
            return False, "unchanged or not a valid UID"
        uids.setdefault(original, set()).add(text)
        return True, ""
    raise ConfigError(f"answer key: unknown action {kind!r}")


def _pixel_check(action: dict, before: np.ndarray, after: np.ndarray) -> tuple[bool, str]:
    if after.shape != before.shape:
        return False, f"image size changed {before.shape} -> {after.shape}"
    x0, y0, x1, y1 = action.get("region") or action["box"]
    a, b = after[y0:y1, x0:x1], before[y0:y1, x0:x1]
    if action["action"] == "pixels_retained":
        same = float(np.mean(a == b))
        return same >= RETAINED_PIXELS, f"only {same:.1%} unchanged"
    values, counts = np.unique(a, return_counts=True)
    uniform = float(counts.max() / a.size)
    return uniform >= BLANKED_UNIFORM, f"only {uniform:.1%} of the box filled (text may remain)"


def score_output(out: str | Path, answer_key: str | Path) -> ScoreReport:
    """Score the de-identified folder `out` against `answer_key` (see the module docstring)."""
    out, key_path = Path(out), Path(answer_key)
    if not key_path.is_file():
        raise ConfigError(f"answer key {key_path} not found")
    try:
        key = json.loads(key_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"answer key {key_path} is not JSON: {exc}") from exc
    if key.get("format") != KEY_FORMAT:
        raise ConfigError(f"answer key {key_path}: format {key.get('format')!r}, expected {KEY_FORMAT!r}")
    if not out.is_dir():
        raise DeidentificationError(f"{out}: no such output folder to score")
    outputs = _index_outputs(out)
    input_root = key_path.parent / key["input"]
    report = ScoreReport()
    shifts: dict = {}
    uids: dict = {}
    deferred: list[tuple[str, dict, str]] = []  # (file, action, kind of consistency)
    for rel, entry in key["files"].items():
        path = outputs.get(int(entry["match"]["InstanceNumber"]))
        if path is None:
            for action in entry["actions"]:
                report.add(rel, action, False, "no output file for this input")
            continue
        ds = pydicom.dcmread(path)
        pixels = [a for a in entry["actions"] if a["action"] in ("pixels_retained", "region_blanked")]
        after = ds.pixel_array if pixels else None
        before = pydicom.dcmread(input_root / rel).pixel_array if pixels else None
        for action in entry["actions"]:
            if action in pixels:
                report.add(rel, action, *_pixel_check(action, before, after))
                continue
            action = {**action, "patient": entry["patient"]}
            ok, why = _header_check(action, _value(ds, action["attribute"]), shifts, uids)
            if ok and action["action"] in ("date_shifted", "uid_changed"):
                deferred.append((rel, action, action["action"]))
            else:
                report.add(rel, action, ok, why)
    patient_shifts: dict[str, set[int]] = defaultdict(set)
    for (patient, _), days in shifts.items():
        patient_shifts[patient] |= days
    for rel, action, kind in deferred:
        if kind == "date_shifted":
            days = patient_shifts[action["patient"]]
            report.add(rel, action, len(days) == 1, f"shift differs between dates of the patient: {sorted(days)}")
        else:
            report.add(rel, action, len(uids[action["original"]]) == 1, "one original UID, several replacements")
    return report
