"""De-identify DICOM files and trees: reading, the output layout, quarantine, the audit log and the mapping.

`deidentify_tree(src, dst, key, config)` writes the de-identified tree under a temporary name and renames it
into place at the end, so a failed run leaves nothing half-written. Per file the outcome is one of

    ok           written to the output
    quarantined  burned-in text suspected and the policy is refuse: not in the output; if a quarantine folder
                 is given, the header-de-identified file goes there for pixel review
    skipped      could not be de-identified (not DICOM, unreadable, DICOMDIR ...) and on_error=skip
    failed       the same with on_error=fail: the run stops and the output is not created

Nothing is ever copied through un-de-identified. The audit log (JSON lines) names the attributes each action
touched, never their values; the optional mapping (pseudonym -> original identity, date shift, study UIDs) is
written only encrypted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radcnn.encryption.cipher import encrypt_bytes
from radcnn.encryption.keys import Secret
from radcnn.errors import DeidentificationError
from radcnn.io import atomic_directory, atomic_path
from radcnn.privacy.config import DeidConfig, Layout, OnError
from radcnn.privacy.engine import Deidentifier, PatientLink

logger = logging.getLogger(__name__)

AUDIT_LOG_NAME = "deid_audit.jsonl"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


@dataclass
class FileResult:
    source: str  # relative to the input root (or the file name)
    status: str  # ok | quarantined | skipped | failed
    output: str | None = None
    reason: str | None = None
    burned_in: list[str] = field(default_factory=list)
    blanked: bool = False
    audit: dict | None = None
    link: PatientLink | None = field(default=None, repr=False)  # for the encrypted mapping only

    def log_record(self) -> dict:
        record = asdict(self)
        record.pop("link")
        return record


@dataclass
class DeidSummary:
    input: Path
    output: Path
    results: list[FileResult]
    audit_log: Path | None = None
    mapping: Path | None = None
    quarantine: Path | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def problems(self) -> list[FileResult]:
        return [r for r in self.results if r.status != "ok"]


def read_dicom(path: Path) -> Dataset:
    """Read a DICOM file (with or without the 128-byte preamble); anything else raises DeidentificationError."""
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        try:
            ds = pydicom.dcmread(path, force=True)
            has_class = "SOPClassUID" in ds
        except Exception as exc:  # a forced read of a non-DICOM file fails in many ways
            raise DeidentificationError(f"{path}: not a DICOM file ({type(exc).__name__})") from exc
        if not has_class:
            raise DeidentificationError(f"{path}: not a DICOM file (no DICM prefix, no SOP Class UID)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DeidentificationError(f"{path}: cannot be read as DICOM: {exc}") from exc
    sop_class = ds.file_meta.get("MediaStorageSOPClassUID", "") if hasattr(ds, "file_meta") else ""
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise DeidentificationError(f"{path}: DICOMDIR files are not de-identified; rebuild the DICOMDIR afterwards")
    return ds


def _output_name(ds: Dataset, rel: Path, layout: Layout) -> Path:
    if layout is Layout.SAME:
        return rel
    parts = [str(ds.get(k, "") or "unknown") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    return Path(parts[0]) / parts[1] / f"{parts[2]}.dcm"


def _write(ds: Dataset, target: Path) -> None:
    with atomic_path(target) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def process_file(
    deidentifier: Deidentifier, src: Path, rel: Path, out_root: Path, quarantine_root: Path | None
) -> FileResult:
    """De-identify one file into `out_root` (or the quarantine); every failure becomes a `failed` result."""
    try:
        ds = read_dicom(src)
        outcome = deidentifier.deidentify(ds, where=str(src))
        name = _output_name(ds, rel, deidentifier.config.layout)
        result = FileResult(
            source=str(rel),
            status="ok",
            burned_in=outcome.burned_in,
            blanked=outcome.blanked,
            audit=outcome.audit.as_dict(),
            link=outcome.link,
        )
        if outcome.refused:
            result.status = "quarantined"
            result.reason = "burned-in text suspected: " + "; ".join(outcome.burned_in)
            if quarantine_root is not None:
                _write(ds, quarantine_root / name)
                result.output = str(quarantine_root / name)
            return result
        _write(ds, out_root / name)
        result.output = str(name)
        return result
    except DeidentificationError as exc:
        return FileResult(source=str(rel), status="failed", reason=str(exc))
    except Exception as exc:  # pydicom raises many exception types on malformed data; record, never copy through
        logger.debug("de-identification of %s failed", src, exc_info=True)
        return FileResult(source=str(rel), status="failed", reason=f"{src}: {type(exc).__name__}: {exc}")


def _worker(args: tuple[bytes, DeidConfig, str, str, str, str | None]) -> FileResult:
    key, config, src, rel, out_root, quarantine = args
    return process_file(Deidentifier(key, config), Path(src), Path(rel), Path(out_root), _opt_path(quarantine))


def _opt_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def _check_paths(src: Path, dst: Path, mapping: Path | None, quarantine: Path | None) -> None:
    if not src.is_dir():
        raise DeidentificationError(f"input {src} is not a directory")
    if _inside(dst, src):
        raise DeidentificationError(f"output {dst} is inside the input {src}; choose a directory outside it")
    if _inside(src, dst):
        raise DeidentificationError(f"input {src} is inside the output {dst}; choose separate directories")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DeidentificationError(f"output {dst} already exists and is not empty; refusing to mix runs")
    if mapping is not None and _inside(mapping, dst):
        raise DeidentificationError(f"the mapping file {mapping} must not be written inside the output {dst}")
    if quarantine is not None and (_inside(quarantine, dst) or _inside(quarantine, src)):
        raise DeidentificationError(f"the quarantine folder {quarantine} must be outside the input and the output")


def _mapping_bytes(results: list[FileResult]) -> bytes:
    mapping: dict[str, dict] = {}
    for r in results:
        if r.link is None or r.status != "ok":
            continue
        entry = mapping.setdefault(
            r.link.pseudonym,
            {
                "patient_id": r.link.patient_id,
                "patient_name": r.link.patient_name,
                "identity_source": r.link.identity_source,
                "date_shift_days": r.link.date_shift_days,
                "studies": {},
            },
        )
        entry["studies"][r.link.new_study_uid] = r.link.study_uid
    return json.dumps({"format": "radcnn-deid-mapping/1", "patients": mapping}, indent=1).encode("utf-8")


def deidentify_tree(
    src: str | Path,
    dst: str | Path,
    key: bytes,
    config: DeidConfig | None = None,
    *,
    audit_log: str | Path | None = None,
    mapping: str | Path | None = None,
    quarantine: str | Path | None = None,
    progress: Callable[[FileResult], None] | None = None,
) -> DeidSummary:
    """De-identify every file under `src` into a new tree `dst` (see the module docstring for the outcomes).

    `audit_log` defaults to `dst/deid_audit.jsonl`; `mapping` (optional) is written encrypted with `key`."""
    config = config or DeidConfig()
    src, dst = Path(src), Path(dst)
    mapping_path, quarantine_path = _opt_path(mapping), _opt_path(quarantine)
    _check_paths(src, dst, mapping_path, quarantine_path)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if dst.exists():
        dst.rmdir()  # empty (checked above); atomic_directory creates it afresh
    results: list[FileResult] = []
    with atomic_directory(dst) as tmp:
        tasks = [(key, config, str(p), str(p.relative_to(src)), str(tmp), _str(quarantine_path)) for p in files]
        for result in _run(tasks, config.workers):
            results.append(result)
            if progress is not None:
                progress(result)
            if result.status == "failed":
                if config.on_error is OnError.FAIL:
                    raise DeidentificationError(f"{result.reason} (no output written; --on-error skip goes on)")
                result.status = "skipped"
        _check_unique_outputs(results)
        log_path = Path(audit_log) if audit_log is not None else tmp / AUDIT_LOG_NAME
        _write_audit_log(log_path, Deidentifier(key, config), config, results)
        if mapping_path is not None:
            encrypt_bytes(_mapping_bytes(results), mapping_path, Secret("key", key))
    final_log = Path(audit_log) if audit_log is not None else dst / AUDIT_LOG_NAME
    summary = DeidSummary(src, dst, results, final_log, mapping_path, quarantine_path)
    logger.info(
        "de-identified %d files, quarantined %d, skipped %d",
        summary.count("ok"),
        summary.count("quarantined"),
        summary.count("skipped"),
    )
    return summary


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _run(tasks: list[tuple], workers: int):
    if workers <= 1 or len(tasks) < 2:
        yield from (_worker(t) for t in tasks)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_worker, tasks, chunksize=max(1, min(16, len(tasks) // (4 * workers))))


def _check_unique_outputs(results: list[FileResult]) -> None:
    seen: dict[str, str] = {}
    for r in results:
        if r.status == "ok" and r.output is not None:
            if r.output in seen:
                raise DeidentificationError(
                    f"{r.source} and {seen[r.output]} map to the same output {r.output} (duplicate SOP instance?)"
                )
            seen[r.output] = r.source


def _write_audit_log(path: Path, deidentifier: Deidentifier, config: DeidConfig, results: list[FileResult]) -> None:
    header = {
        "run": {
            "profile": "DICOM PS3.15 Table E.1-1 Basic Application Level Confidentiality Profile",
            "method": config.method_description(),
            "options": sorted(o.value for o in config.options),
            "burned_in_policy": config.burned_in.value,
            "layout": config.layout.value,
            "key_fingerprint": deidentifier.fingerprint,
            "files": len(results),
        }
    }
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        for r in results:
            fh.write(json.dumps(r.log_record()) + "\n")


def deidentify_file(src: str | Path, dst: str | Path, key: bytes, config: DeidConfig | None = None) -> FileResult:
    """De-identify one file to `dst`. Raises DeidentificationError when it fails or is refused for burned-in text.

    The layout option does not apply: the output is exactly `dst`."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.resolve() == dst.resolve():
        raise DeidentificationError(f"{src}: refusing to overwrite the original with its de-identified copy")
    config = replace(config or DeidConfig(), layout=Layout.SAME)
    result = process_file(Deidentifier(key, config), src, Path(dst.name), dst.parent, None)
    if result.status == "failed":
        raise DeidentificationError(result.reason or f"{src}: de-identification failed")
    if result.status == "quarantined":
        raise DeidentificationError(f"{src}: refused: {result.reason}")
    result.output = str(dst)
    return result
