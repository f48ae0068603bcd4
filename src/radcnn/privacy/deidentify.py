"""De-identify DICOM files and trees: reading, the output layout, quarantine, the audit log and the mapping.

`deidentify_tree(src, dst, key, config)` writes the de-identified tree under a temporary name and renames it
into place at the end, so a failed run leaves nothing half-written. Per file the outcome is one of

    ok           written to the output
    quarantined  burned-in text suspected and the policy is refuse, or a DICOM file that is truncated or whose
                 pixel data cannot be decoded (reading.py): not in the output, the reason in the audit log; if a
                 quarantine folder is given, the header-de-identified file goes there for review
    skipped      could not be de-identified (not DICOM, DICOMDIR ...) and on_error=skip
    failed       the same with on_error=fail: the run stops and the output is not created

Nothing is ever copied through un-de-identified. Output names come from paths.py (UID layout by default). The
audit log (audit.py) holds no original path or identifier; the optional mapping (pseudonym -> original identity,
date shift, study UIDs, source id -> input path) is written only encrypted. An input without a single DICOM file
is an error, not an empty success.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from radcnn.encryption.cipher import encrypt_bytes
from radcnn.encryption.keys import Secret
from radcnn.errors import DeidentificationError
from radcnn.io import atomic_directory, atomic_path
from radcnn.privacy.audit import AUDIT_LOG_NAME, sanitize_reason, source_id, write_audit_log
from radcnn.privacy.config import BurnedInPolicy, DeidConfig, OnError
from radcnn.privacy.engine import Deidentifier, PatientLink
from radcnn.privacy.ocr import require_tesseract
from radcnn.privacy.paths import output_name
from radcnn.privacy.reading import DamagedDicomError, read_dicom

logger = logging.getLogger(__name__)

__all__ = ["AUDIT_LOG_NAME", "DeidSummary", "FileResult", "deidentify_file", "deidentify_tree", "read_dicom"]


@dataclass
class FileResult:
    source: str  # relative to the input root (or the file name): in memory and on the terminal only
    status: str  # ok | quarantined | skipped | failed
    source_id: str = ""  # keyed id of `source`: what the audit log names the file by
    output: str | None = None
    reason: str | None = None  # may name the input path: the audit log gets `audit_reason`
    audit_reason: str | None = None
    burned_in: list[str] = field(default_factory=list)
    blanked: bool = False
    boxes: list[dict] = field(default_factory=list)  # burned-in text boxes blanked (detect policy)
    audit: dict | None = None
    link: PatientLink | None = field(default=None, repr=False)  # for the encrypted mapping only

    def log_record(self) -> dict:
        """The audit log line: nothing of the input path or the original header (see audit.py)."""
        record = asdict(self)
        for private in ("link", "source", "reason"):
            record.pop(private)
        record["reason"] = record.pop("audit_reason")
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


def _write(ds: Dataset, target: Path) -> None:
    with atomic_path(target) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def process_file(
    deidentifier: Deidentifier, src: Path, rel: Path, out_root: Path, quarantine_root: Path | None
) -> FileResult:
    """De-identify one file into `out_root` (or the quarantine); every failure becomes a `failed` result."""
    result = FileResult(source=str(rel), status="failed", source_id=source_id(deidentifier.path_key, str(rel)))
    try:
        ds = read_dicom(src)
        outcome = deidentifier.deidentify(ds, where=str(src))
        name = output_name(ds, rel, deidentifier.config.layout, outcome.path_identifiers, deidentifier.path_key)
        result.status, result.burned_in, result.blanked = "ok", outcome.burned_in, outcome.blanked
        result.boxes, result.audit, result.link = outcome.boxes, outcome.audit.as_dict(), outcome.link
        if outcome.refused:
            result.status = "quarantined"
            _set_reason(result, src, "burned-in text suspected: " + "; ".join(outcome.burned_in))
            if quarantine_root is not None:
                _write(ds, quarantine_root / name)
                result.output = str(quarantine_root / name)
            return result
        _write(ds, out_root / name)
        result.output = name.as_posix()
        return result
    except DamagedDicomError as exc:
        result.status, result.output, result.audit, result.link = "quarantined", None, None, None
        _set_reason(result, src, str(exc))
    except DeidentificationError as exc:
        _set_reason(result, src, str(exc))
    except Exception as exc:  # pydicom raises many exception types on malformed data; record, never copy through
        logger.debug("de-identification of %s failed", src, exc_info=True)
        _set_reason(result, src, f"{src}: {type(exc).__name__}: {exc}")
    result.output, result.audit, result.link = None, None, None
    return result


def _set_reason(result: FileResult, src: Path, reason: str) -> None:
    result.reason = reason
    result.audit_reason = sanitize_reason(reason, src, result.source)


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
    sources = {r.source_id: r.source for r in results}
    return json.dumps({"format": "radcnn-deid-mapping/2", "patients": mapping, "sources": sources}, indent=1).encode()


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
    if not files:
        raise DeidentificationError(f"input {src} contains no files: nothing to de-identify")
    if config.burned_in is BurnedInPolicy.DETECT:
        require_tesseract()
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
        if not any(r.status in ("ok", "quarantined") for r in results):
            raise DeidentificationError(
                f"input {src}: none of its {len(results)} files is DICOM (first: {results[0].reason}); nothing written"
            )
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
                    f"{r.source} and {seen[r.output]} map to the same output {r.output}: the same SOPInstanceUID "
                    "twice; keep one of them, or use --layout mirror"
                )
            seen[r.output] = r.source


def _run_header(deidentifier: Deidentifier, config: DeidConfig, files: int) -> dict:
    return {
        "profile": "DICOM PS3.15 Table E.1-1 Basic Application Level Confidentiality Profile",
        "method": config.method_description(),
        "options": sorted(o.value for o in config.options),
        "burned_in_policy": config.burned_in.value,
        "layout": config.layout.value,
        "key_fingerprint": deidentifier.fingerprint,
        "files": files,
    }


def _write_audit_log(path: Path, deidentifier: Deidentifier, config: DeidConfig, results: list[FileResult]) -> None:
    write_audit_log(path, _run_header(deidentifier, config, len(results)), [r.log_record() for r in results])


def single_file_audit_path(dst: Path) -> Path:
    return dst.with_name(dst.name + ".deid_audit.jsonl")


def deidentify_file(
    src: str | Path,
    dst: str | Path,
    key: bytes,
    config: DeidConfig | None = None,
    *,
    audit_log: str | Path | None = None,
) -> FileResult:
    """De-identify one file to exactly `dst` (the layout option does not apply) and write its audit log.

    The audit log goes to `audit_log`, by default `<dst>.deid_audit.jsonl`. Raises DeidentificationError when the
    file is not DICOM, is damaged, or is refused for burned-in text (nothing is written then)."""
    src, dst = Path(src), Path(dst)
    config = config or DeidConfig()
    if not src.is_file():
        raise DeidentificationError(f"input {src} is not a file")
    if dst.exists() and src.resolve() == dst.resolve():
        raise DeidentificationError(f"{src}: refusing to overwrite the original with its de-identified copy")
    if dst.is_dir():
        raise DeidentificationError(f"output {dst} is a directory; give a file name for a single input file")
    if config.burned_in is BurnedInPolicy.DETECT:
        require_tesseract()
    deidentifier = Deidentifier(key, config)
    result = FileResult(source=src.name, status="failed", source_id=source_id(deidentifier.path_key, src.name))
    try:
        ds = read_dicom(src)
        outcome = deidentifier.deidentify(ds, where=str(src))
    except DeidentificationError as exc:
        raise DeidentificationError(f"{exc} (nothing written)") from exc
    if outcome.refused:
        raise DeidentificationError(f"{src}: refused: burned-in text suspected: {'; '.join(outcome.burned_in)}")
    _write(ds, dst)
    result.status, result.output, result.burned_in = "ok", dst.name, outcome.burned_in
    result.blanked, result.boxes, result.audit, result.link = (
        outcome.blanked,
        outcome.boxes,
        outcome.audit.as_dict(),
        outcome.link,
    )
    log_path = Path(audit_log) if audit_log is not None else single_file_audit_path(dst)
    write_audit_log(log_path, _run_header(deidentifier, config, 1), [result.log_record()])
    result.output = str(dst)
    return result
