"""The leakage checks every training run makes: no patient, and no identical image, on two sides of a split.

Two checks, both recorded in the run's ``data_summary.json`` with what was checked and what was found:

* **patients** — every patient id in exactly one partition (follow-up images of a patient are correlated);
* **pixels** — no two images with identical model-input pixels in two partitions. The evidence is the XXH3-128
  hash of each image's quantised model input, so a copy re-exported with a different header (new UIDs, another
  transfer syntax of the same pixels) is caught as well as a plain file copy.

What happens to identical images across partitions is a policy (``data.on_leakage``):

* ``fail`` — refuse the split, naming the files (the default for splits radcnn makes itself: identical images
  under two patient ids mean the patient ids are wrong, which only the user can fix);
* ``drop`` — keep the test split intact and drop the other copies: training copies of val or test images, and
  val copies of test images, each listed in the run's skipped files (the default for a dataset's *official* split,
  e.g. MedMNIST's, which ships with a few duplicates across its partitions: its test split must stay intact to be
  comparable with published results);
* ``auto`` — ``drop`` for an official split, ``fail`` otherwise.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xxhash

from radcnn.errors import ConfigError, LeakageError

log = logging.getLogger(__name__)

POLICIES = ("auto", "fail", "drop")
_SHOWN = 10


@dataclass(frozen=True)
class LeakageCheck:
    """One check's record for the run: what was checked, whether it passed, and what was done about it."""

    name: str
    checked: str
    passed: bool
    result: str
    dropped: tuple[tuple[str, str], ...] = field(default=())  # (image, why) removed under the "drop" policy

    def to_dict(self) -> dict:
        return {"check": self.name, "checked": self.checked, "passed": self.passed, "result": self.result}


def check_leakage(
    patient_ids: Sequence[str] | np.ndarray,
    partitions: Sequence[str] | np.ndarray,
    content_hashes: Sequence[str] | None = None,
) -> None:
    """Raise LeakageError naming every patient (and identical image) that appears in more than one partition."""
    problems = []
    offenders = _crossing(patient_ids, partitions)
    if offenders:
        listed = ", ".join(f"{p} ({'/'.join(sorted(parts))})" for p, parts in offenders[:20])
        more = f" and {len(offenders) - 20} more" if len(offenders) > 20 else ""
        problems.append(f"{len(offenders)} patient(s) in more than one partition: {listed}{more}")
    if content_hashes is not None:
        twins = _crossing(content_hashes, partitions)
        if twins:
            problems.append(
                f"{len(twins)} identical image(s) (by content hash) in more than one partition: "
                + ", ".join(h[:12] for h, _ in twins[:20])
            )
    if problems:
        raise LeakageError("split refused — " + "; ".join(problems))


def _crossing(keys, partitions) -> list[tuple[str, set[str]]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for key, part in zip(keys, partitions, strict=True):
        seen[str(key)].add(str(part))
    return sorted((k, parts) for k, parts in seen.items() if len(parts) > 1)


def patient_check(patient_ids: Sequence[str] | np.ndarray, partitions: np.ndarray) -> LeakageCheck:
    """The patient-id check (raises LeakageError when it fails: no policy can repair a patient-level leak)."""
    check_leakage(patient_ids, partitions)
    n = len(set(map(str, patient_ids)))
    return LeakageCheck("patients", f"{n} patient ids over {len(partitions)} images", True, "no patient in two splits")


def pixel_hashes(rows) -> list[str]:
    """XXH3-128 of each image's quantised model input. `rows` is an (N, 1, H, W) array-like of floats in [0, 1]
    (or of the cache's uint16), read in batches so a memory-mapped store is never loaded whole."""
    hashes: list[str] = []
    for start in range(0, len(rows), 512):
        batch = np.asarray(rows[np.arange(start, min(start + 512, len(rows)))])
        if batch.dtype != np.uint16:
            batch = np.round(np.clip(batch, 0.0, 1.0) * 65535.0).astype(np.uint16)
        hashes.extend(xxhash.xxh3_128_hexdigest(np.ascontiguousarray(row).tobytes()) for row in batch)
    return hashes


def content_check(
    paths: Sequence[str],
    partitions: np.ndarray,
    hashes: Sequence[str],
    *,
    policy: str = "auto",
    official: bool = False,
) -> tuple[LeakageCheck, np.ndarray]:
    """The identical-pixels check under `policy` (module docstring). Returns the record and a keep-mask over rows;
    raises LeakageError, naming the files, when the policy refuses."""
    if policy not in POLICIES:
        raise ConfigError(f"data.on_leakage must be one of {', '.join(POLICIES)}; got {policy!r}")
    effective = ("drop" if official else "fail") if policy == "auto" else policy
    checked = f"{len(hashes)} images: XXH3-128 of the model-input pixels"
    groups = _groups_across_partitions(hashes, partitions)
    keep = np.ones(len(paths), dtype=bool)
    if not groups:
        return LeakageCheck("identical images", checked, True, "no identical images in two splits"), keep
    if effective == "fail":
        described = [_describe(group, paths, partitions) for group in groups]
        listing = "; ".join(described[:_SHOWN])
        listing += f"; and {len(described) - _SHOWN} more" if len(described) > _SHOWN else ""
        raise LeakageError(
            f"split refused — {len(groups)} identical image(s) in more than one split: {listing}; fix the patient "
            "ids or remove the copies, or pass --on-leakage drop to drop the copies outside the test split "
            "(recorded in the run)"
        )
    dropped = []
    for group in groups:
        # The copy that stays is in the latest split of test > val > train, so the test split stays intact.
        ranks = [_RANK.get(str(partitions[i]), 0) for i in group]
        kept = group[int(np.argmax(ranks))]
        for i in group:
            if _RANK.get(str(partitions[i]), 0) < max(ranks):
                keep[i] = False
                why = f"identical pixels to {paths[kept]} ({partitions[kept]}): {partitions[i]} copy dropped"
                dropped.append((str(paths[i]), why))
    log.warning("%d image(s) identical to images in a later split were dropped (on_leakage=drop)", len(dropped))
    result = f"{len(groups)} identical image group(s) across splits; {len(dropped)} copies outside test dropped"
    return LeakageCheck("identical images", checked, True, result, tuple(dropped)), keep


_RANK = {"train": 0, "val": 1, "test": 2, "external": 3}


def _groups_across_partitions(hashes: Sequence[str], partitions: np.ndarray) -> list[list[int]]:
    rows: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(hashes):
        rows[digest].append(i)
    return [group for group in rows.values() if len({str(partitions[i]) for i in group}) > 1]


def _describe(group: list[int], paths: Sequence[str], partitions: np.ndarray) -> str:
    return " = ".join(f"{paths[i]} ({partitions[i]})" for i in group)
