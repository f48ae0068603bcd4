"""`radcnn data`: list the dataset layouts, inspect a dataset folder or file, download an official MedMNIST file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from radcnn.cli.render import ProgressCallback, console
from radcnn.errors import ConfigError


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value): true/false → bool, none → None, numbers → int/float, a,b → tuple of str."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--option expects KEY=VALUE, got {text!r}")
    raw = raw.strip()
    lowered = raw.lower()
    value: Any
    if lowered in ("true", "false"):
        value = lowered == "true"
    elif lowered == "none":
        value = None
    elif "," in raw:
        value = tuple(v.strip() for v in raw.split(",") if v.strip())
    else:
        value = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
    return key.strip(), value


def counts_table(counts, label_names: tuple[str, ...]) -> Table:
    """Splits as columns, counts as rows: stays readable with 14 labels. A label cell is "positives" plus the
    unknown (NaN) count when the label has any."""
    table = Table(title="counts per split", show_header=True, header_style="bold")
    table.add_column("")
    for split in counts["split"]:
        table.add_column(escape(str(split)), justify="right")
    for key in ("images", "patients", *label_names):
        cells = []
        for _, row in counts.iterrows():
            cell = str(row[key])
            unknown = row.get(f"{key} unknown")
            if unknown is not None and unknown == unknown:  # NaN-safe: the column exists only for some labels
                cell += f" (+{int(unknown)} unknown)"
            cells.append(cell)
        table.add_row(escape(key), *cells)
    return table


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Dataset layouts: inspect a dataset, download MedMNIST.", no_args_is_help=True)

    @data_app.command("layouts")
    def layouts() -> None:
        """List the registered dataset layouts and their options.

        Example: radcnn data layouts
        """
        from radcnn.data.layouts import layout_infos, layout_options

        table = Table(title="dataset layouts")
        table.add_column("name")
        table.add_column("description")
        table.add_column("options")
        for info in layout_infos():
            table.add_row(info.name, escape(info.summary), ", ".join(layout_options(info.name)))
        console.print(table)

    @data_app.command("inspect")
    def inspect(
        path: Path = typer.Argument(..., help="Dataset folder or label/.npz file."),
        layout: str = typer.Option("auto", help="Layout name (see `radcnn data layouts`), or auto to detect it."),
        option: list[str] = typer.Option([], "--option", help="Layout option KEY=VALUE (repeatable)."),
        sample: int = typer.Option(16, help="How many images to decode for the size check."),
        seed: int = typer.Option(0, help="Seed that picks the sampled images."),
        on_error: str = typer.Option("skip", help="skip: list every problem (default here) | fail: stop at the first."),
        show: int = typer.Option(10, help="How many problems to list one by one."),
        skipped_csv: Path = typer.Option(None, help="Write every problem to this CSV (what, why)."),
    ) -> None:
        """Show what PATH holds: layout, counts per split and class, patients, image sizes, problems.

        A PACS export (a folder of DICOM files without labels) is summarised from its headers: patients, studies,
        series, modalities, views, sizes, transfer syntaxes, and every unreadable file with the reason.

        Example: radcnn data inspect chest_xray/ --sample 32
        """
        from radcnn.data.layouts import write_skipped_csv
        from radcnn.data.layouts.inspection import inspect_dataset

        options = dict(parse_option(o) for o in option)
        report = inspect_dataset(path, layout=layout, sample=sample, seed=seed, on_error=on_error, **options)
        manifest = report.manifest
        summary = Table(title="dataset", show_header=False)
        summary.add_column("field", style="bold")
        summary.add_column("value")
        for field, value in (
            ("layout", report.layout),
            ("source", str(manifest.source or report.source)),
            ("images", len(manifest)),
            ("patients", int(manifest.table["patient_id"].nunique())),
            ("labels", ", ".join(manifest.label_names) or "none (not labelled: inspect, de-identify, predict)"),
            ("problems", len(report.problems) + len(report.read_failures)),
        ):
            summary.add_row(field, escape(str(value)))
        console.print(summary)
        console.print(counts_table(report.counts, manifest.label_names))
        for field, value in report.details.items():
            shown = ", ".join(f"{k}: {n}" for k, n in value.items()) if isinstance(value, dict) else str(value)
            console.print(f"[bold]{field.replace('_', ' ')}[/]: {escape(shown)}", highlight=False)
        sizes = ", ".join(f"{h}×{w}: {n}" for (h, w), n in report.image_sizes.most_common()) or "none decoded"
        console.print(f"[bold]image sizes[/] ({report.sampled} sampled): {sizes}")
        problems = [*report.problems, *report.read_failures]
        if not problems:
            console.print("[bold green]no problems found[/]")
        else:
            summary = ", ".join(f"{kind}: {n}" for kind, n in report.problem_summary.items())
            console.print(f"[bold yellow]problems ({len(problems)}):[/] {summary}", highlight=False)
            for what, why in problems[:show]:
                console.print(f"  {what}: {why}", highlight=False, markup=False)
            if len(problems) > show:
                console.print(f"  … {len(problems) - show} more (--show, --skipped-csv)")
        if skipped_csv is not None:
            count = write_skipped_csv(problems, skipped_csv)
            console.print(f"wrote {count} problem(s) to {skipped_csv}")

    @data_app.command("download")
    def download(
        name: str = typer.Argument(..., help="MedMNIST 2-D data set, e.g. pneumoniamnist, chestmnist."),
        size: int = typer.Option(28, help="Image side: 28, 64, 128 or 224."),
        out: Path = typer.Option(Path("data"), "--out", "-o", help="Folder to write the .npz into."),
        md5: str = typer.Option(None, help="Expected MD5 (default: the official checksum)."),
        url: str = typer.Option(None, help="Download from this address instead (a mirror; file:// works)."),
    ) -> None:
        """Fetch an official MedMNIST file, verify its MD5, and write it atomically into OUT.

        Example: radcnn data download pneumoniamnist --size 28 -o data
        """
        from radcnn.data.layouts.medmnist_download import download_medmnist

        with ProgressCallback(f"downloading {name} ({size} px)") as progress:
            path = download_medmnist(name, out, size=size, md5=md5, url=url, progress=progress)
        console.print(f"[bold green]verified[/] {path}")

    app.add_typer(data_app, name="data")
