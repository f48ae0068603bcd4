"""`radcnn serve`: the HTTP API and the browser viewer for one trained model (FastAPI + uvicorn)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        run: Path = typer.Argument(..., help="Run directory or .safetensors model file."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
        port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
        token_file: Path = typer.Option(None, help="File holding the bearer token clients must send."),
        max_upload_mb: float = typer.Option(32.0, min=0.001, help="Largest accepted upload, in MiB."),
        backend: str = typer.Option("torch", help="torch | onnx (ONNX Runtime, checked against PyTorch at load)."),
        max_batch: int = typer.Option(16, min=1, help="Most requests scored in one forward pass."),
        batch_wait_ms: float = typer.Option(5.0, min=0.0, help="How long a request waits for others to batch with."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Serve a model over HTTP: /v1/health, /v1/model, /v1/predict, the viewer at /viewer/, docs at /docs.

        Example: radcnn serve runs/demo --port 8000 --token-file token.txt
        """
        import uvicorn

        from radcnn.cli.serve_logging import hide_header_warnings, quiet_exporter
        from radcnn.serve.api import ServeSettings, create_app
        from radcnn.serve.auth import read_token
        from radcnn.serve.predictor import Predictor

        quiet_exporter()
        hide_header_warnings()
        token = read_token(token_file) if token_file is not None else None
        if token is None and host not in LOOPBACK:
            log.warning("listening on %s without --token-file: anyone who can reach this port can use the model", host)
        key = optional_secret(key_file, passphrase_env)
        predictor = Predictor.from_path(run, key=key, backend=backend)
        settings = ServeSettings(
            max_upload_bytes=int(max_upload_mb * 2**20),
            max_batch=max_batch,
            max_wait_ms=batch_wait_ms,
            token=token,
        )
        api = create_app(predictor, run_dir=run if run.is_dir() else None, settings=settings)
        config = uvicorn.Config(api, host=host, port=port, log_config=None, access_log=False)
        server = uvicorn.Server(config)
        log.info(
            "serving %s (version %s, %s backend) on http://%s:%d — viewer /viewer/, API docs /docs%s",
            predictor.info.name,
            predictor.info.version,
            backend,
            host,
            port,
            ", bearer token required" if token else "",
        )
        server.run()
