"""`radcnn export`: a trained model as ONNX or TorchScript, checked against PyTorch before it is written."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import console


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        run: Path = typer.Argument(..., help="Run directory or .safetensors model file."),
        fmt: str = typer.Option(..., "--format", "-f", help="onnx | torchscript"),
        out: Path = typer.Option(..., "--out", "-o", help="The file to write."),
        overwrite: bool = typer.Option(False, help="Replace an existing --out file."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Export a model for other runtimes; the spec (input size, labels, thresholds) travels inside the file.

        The exported model is run on a batch of random images and compared with PyTorch; a max |logit
        difference| above 1e-4 is an error and nothing is written.

        Example: radcnn export runs/demo --format onnx --out demo.onnx
        """
        from radcnn.cli.serve_logging import quiet_exporter
        from radcnn.errors import ConfigError
        from radcnn.models.checkpoint import load_model
        from radcnn.models.export import FORMATS, export_model
        from radcnn.runs import RunDir

        if fmt not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if out.exists() and not overwrite:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it")
        quiet_exporter()
        key = optional_secret(key_file, passphrase_env)
        model, spec = RunDir(run, key=key).load_model() if run.is_dir() else load_model(run, key=key)
        result = export_model(model, spec, fmt, out)
        console.print(
            f"wrote {result.path} ({fmt}, {result.size_bytes / 2**20:.1f} MiB); parity with PyTorch on "
            f"{result.parity_batch} images: max |logit difference| {result.max_abs_diff:.2g} (limit 1e-4)"
        )
