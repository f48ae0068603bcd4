"""`radcnn deid IN OUT` (de-identify a file or a tree) and `radcnn deid check DIR` (verify the result).

`deid` is a command group whose default command is `run`: when the first word after `deid` is not a
sub-command name, `run` is assumed, so `radcnn deid IN OUT` and `radcnn deid run IN OUT` are the same (a folder
literally named `check` needs the explicit `radcnn deid run check OUT`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from typer.core import TyperGroup

from radcnn.cli.render import console, key_value_table

_MAX_ROWS = 30


def _read_safe_private(path: Path | None) -> tuple:
    from radcnn.errors import ConfigError
    from radcnn.privacy.config import parse_safe_private

    if path is None:
        return ()
    if not path.is_file():
        raise ConfigError(f"safe private list {path} not found")
    return parse_safe_private(path.read_text(encoding="utf-8").splitlines())


class _RunByDefault(TyperGroup):
    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


deid_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    help="De-identify DICOM to PS3.15 Annex E (default command: run IN OUT), or check de-identified files.",
)

KEY_FILE = typer.Option(
    None, "--key-file", "-k", envvar="RADCNN_KEY_FILE", help="Project key (create with `radcnn keygen PATH`)."
)


@deid_app.command("run")
def run(
    source: Path = typer.Argument(..., help="A DICOM file or a folder of DICOM files."),
    output: Path = typer.Argument(..., help="Output file, or a new (or empty) folder outside the input."),
    key_file: Path = KEY_FILE,
    retain_uids: bool = typer.Option(False, "--retain-uids", help="Retain UIDs Option."),
    retain_device_identity: bool = typer.Option(
        False, "--retain-device-identity", help="Retain Device Identity Option."
    ),
    retain_institution_identity: bool = typer.Option(
        False, "--retain-institution-identity", help="Retain Institution Identity Option."
    ),
    retain_patient_characteristics: bool = typer.Option(
        False, "--retain-patient-characteristics", help="Retain Patient Characteristics Option."
    ),
    modified_dates: bool = typer.Option(
        False,
        "--modified-dates",
        help="Retain Longitudinal Temporal Information with Modified Dates (keyed per-patient shift).",
    ),
    full_dates: bool = typer.Option(
        False, "--full-dates", help="Retain Longitudinal Temporal Information Full Dates Option."
    ),
    clean_descriptors: bool = typer.Option(
        False, "--clean-descriptors", help="Clean Descriptors Option (scrub, keep descriptions)."
    ),
    clean_structured_content: bool = typer.Option(
        False, "--clean-structured-content", help="Clean Structured Content Option."
    ),
    safe_private: Path = typer.Option(
        None, help="Retain Safe Private Option: file with one GGGG,CREATOR,EE line per safe private attribute."
    ),
    pseudonyms: bool = typer.Option(True, help="Keyed pseudonym in PatientID/PatientName (else emptied)."),
    burned_in: str = typer.Option(
        "refuse",
        help="Burned-in text: refuse (quarantine suspects) | detect (Tesseract OCR, blank the text) | blank "
        "(fixed --blank rectangles) | allow.",
    ),
    keep_marker: list[str] = typer.Option(
        [], help="With --burned-in detect: a burned-in view/laterality marker to keep, e.g. LT or PA (repeatable)."
    ),
    blank: list[str] = typer.Option([], help="Rectangle x0,y0,x1,y1 to blank (repeatable; --burned-in blank)."),
    flag_manufacturer: list[str] = typer.Option([], help="Manufacturer/model known to burn in text (repeatable)."),
    quarantine: Path = typer.Option(None, help="Folder for refused files (header de-identified) for review."),
    on_error: str = typer.Option("fail", help="Non-DICOM or unreadable file: fail | skip."),
    layout: str = typer.Option(
        "uid",
        help="Output names: uid (new study/series/sop UIDs) | mirror (input names, identifying parts replaced).",
    ),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    mapping: Path = typer.Option(None, help="Write the encrypted re-identification mapping here."),
    audit_log: Path = typer.Option(
        None, help="Audit log path (default OUT/deid_audit.jsonl, or OUT.deid_audit.jsonl for one file)."
    ),
    max_shift_days: int = typer.Option(3650, help="Largest date shift in days (--modified-dates)."),
) -> None:
    """De-identify a DICOM file or folder to the Basic Application Level Confidentiality Profile.

    Example: radcnn deid export/ deid-out/ --key-file project.key --burned-in detect
    """
    from radcnn.encryption.keys import load_key_file
    from radcnn.privacy.config import DeidConfig, Rectangle
    from radcnn.privacy.deidentify import deidentify_file, deidentify_tree

    flags = {
        "retain_uids": retain_uids,
        "retain_device_identity": retain_device_identity,
        "retain_institution_identity": retain_institution_identity,
        "retain_patient_characteristics": retain_patient_characteristics,
        "retain_modified_dates": modified_dates,
        "retain_full_dates": full_dates,
        "clean_descriptors": clean_descriptors,
        "clean_structured_content": clean_structured_content,
        "retain_safe_private": safe_private is not None,
    }
    config = DeidConfig(
        options=frozenset(name for name, on in flags.items() if on),
        pseudonymise=pseudonyms,
        burned_in=burned_in,
        blank_rectangles=tuple(Rectangle.parse(r) for r in blank),
        flag_manufacturers=tuple(flag_manufacturer),
        safe_private=_read_safe_private(safe_private),
        max_shift_days=max_shift_days,
        on_error=on_error,
        layout=layout,
        workers=workers,
        keep_markers=tuple(keep_marker),
    )
    key = load_key_file(key_file)
    if source.is_file():
        from radcnn.privacy.deidentify import single_file_audit_path

        result = deidentify_file(source, output, key, config, audit_log=audit_log)
        log = audit_log or single_file_audit_path(output)
        console.print(f"de-identified {source} -> {result.output} (audit log {log}, {len(result.boxes)} text boxes)")
        return
    if not source.exists():
        from radcnn.errors import DeidentificationError

        raise DeidentificationError(f"input {source} does not exist")
    with console.status("de-identifying ..."):
        summary = deidentify_tree(
            source, output, key, config, audit_log=audit_log, mapping=mapping, quarantine=quarantine
        )
    console.print(
        key_value_table(
            "de-identification",
            {
                "written": summary.count("ok"),
                "quarantined (burned-in text)": summary.count("quarantined"),
                "skipped (errors)": summary.count("skipped"),
                "output": str(summary.output),
                "audit log": str(summary.audit_log),
                **({"mapping (encrypted)": str(summary.mapping)} if summary.mapping else {}),
            },
        )
    )
    if summary.problems:
        table = Table(title="files not written (source id as in the audit log)", show_header=True, header_style="bold")
        for column in ("file", "source id", "status", "reason"):
            table.add_column(column)
        for r in summary.problems[:_MAX_ROWS]:
            table.add_row(r.source, r.source_id, r.status, r.reason or "")
        console.print(table)
        if len(summary.problems) > _MAX_ROWS:
            console.print(f"... and {len(summary.problems) - _MAX_ROWS} more: see the audit log")


@deid_app.command("check")
def check(
    directory: Path = typer.Argument(..., help="De-identified file or folder to verify."),
    identifiers: Path = typer.Option(None, help="File of known identifiers (names, MRNs ...), one per line."),
    identifier: list[str] = typer.Option([], help="A known identifier to search for (repeatable)."),
    option: list[str] = typer.Option(
        [], help="Check against exactly these options (repeatable, e.g. retain_uids); default: as declared."
    ),
    safe_private: Path = typer.Option(None, help="Safe private list (GGGG,CREATOR,EE lines) used for the run."),
    report_path: Path = typer.Option(None, "--report", help="Also write every finding to this JSON file."),
) -> None:
    """Report attributes the profile says must not survive, private tags, and known identifiers anywhere.

    Example: radcnn deid check deid-out/ --identifier PX000001
    """
    from radcnn.errors import DeidentificationError
    from radcnn.privacy.verify import check_tree, read_identifiers

    known = list(identifier) + (read_identifiers(identifiers) if identifiers is not None else [])
    report = check_tree(directory, known, options=option or None, safe_private=_read_safe_private(safe_private))
    console.print(
        key_value_table(
            "de-identification check",
            {
                "files checked": report.files_checked,
                "files with findings": report.files_with_findings,
                "findings": len(report.findings),
            },
        )
    )
    if report_path is not None:
        from dataclasses import asdict

        from radcnn.io import write_json_atomic

        write_json_atomic(
            report_path,
            {
                "root": str(directory),
                "files_checked": report.files_checked,
                "findings": [asdict(f) for f in report.findings],
            },
        )
    if report.ok:
        console.print("[green]no findings[/] (a profile cannot guarantee that no identifying information remains)")
        return
    kinds: dict[str, set[str]] = {}
    for f in report.findings:
        kinds.setdefault(f.problem.split(" (")[0], set()).add(f.path)
    summary = Table(title="findings by kind", show_header=True, header_style="bold")
    summary.add_column("problem")
    summary.add_column("files", justify="right")
    for problem, paths in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        summary.add_row(problem, str(len(paths)))
    console.print(summary)
    table = Table(title="findings", show_header=True, header_style="bold")
    for column in ("file", "where", "problem"):
        table.add_column(column)
    for f in report.findings[:_MAX_ROWS]:
        table.add_row(f.path, f.location, f.problem)
    console.print(table)
    if len(report.findings) > _MAX_ROWS:
        console.print(f"... and {len(report.findings) - _MAX_ROWS} more")
    raise DeidentificationError(
        f"{len(report.findings)} findings in {report.files_with_findings} of {report.files_checked} files under "
        f"{directory}"
    )


@deid_app.command("benchmark")
def benchmark(
    root: Path = typer.Argument(..., help="New folder: ROOT/input (a planted PACS export) and ROOT/answer_key.json."),
    patients: int = typer.Option(3, min=1, help="Phantom patients (1-4 studies each)."),
    size: int = typer.Option(1024, min=256, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Random seed."),
    text: bool = typer.Option(True, help="Burn identifying text into the pixels."),
) -> None:
    """Write a planted de-identification benchmark with its answer key (for `radcnn deid score`).

    Example: radcnn deid benchmark bench/ --patients 4
    """
    from radcnn.privacy.benchmark import make_benchmark

    key = make_benchmark(root, patients=patients, size=size, seed=seed, text=text)
    console.print(f"benchmark input {root / 'input'}, answer key {key}")


@deid_app.command("score")
def score(
    output: Path = typer.Argument(..., help="The de-identified folder."),
    answer_key: Path = typer.Option(..., "--answer-key", help="answer_key.json from `radcnn deid benchmark`."),
    report_path: Path = typer.Option(None, "--report", help="Also write the full score (per file) as JSON."),
) -> None:
    """Percentage of the answer key's required actions done correctly, per action type (MIDI-B style).

    Example: radcnn deid score deid-out/ --answer-key bench/answer_key.json
    """
    from radcnn.privacy.score import score_output

    report = score_output(output, answer_key)
    data = report.as_dict()
    table = Table(title=f"de-identification score: {data['percent']:.2f}% of {data['required']} actions")
    for column in ("action", "correct", "required", "percent"):
        table.add_column(column, justify="left" if column == "action" else "right")
    for name, row in data["per_action"].items():
        table.add_row(name, str(row["correct"]), str(row["required"]), f"{row['percent']:.2f}")
    console.print(table)
    worst = sorted(data["per_file"].items(), key=lambda kv: kv[1]["percent"])[:5]
    if worst and worst[0][1]["percent"] < 100:
        console.print("lowest files: " + ", ".join(f"{k} {v['percent']:.1f}%" for k, v in worst if v["percent"] < 100))
    for failure in data["failures"][:_MAX_ROWS]:
        console.print(f"  {failure['file']}: {failure['action']} {failure['what']}: {failure['why']}")
    if report_path is not None:
        from radcnn.io import write_json_atomic

        write_json_atomic(report_path, data)


def register(app: typer.Typer) -> None:
    app.add_typer(deid_app, name="deid")
