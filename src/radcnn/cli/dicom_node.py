"""`radcnn dicom-node`: a DICOM node (C-STORE SCP + C-ECHO) that answers a PACS with an SR and a heat map."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("dicom-node")
    def dicom_node(
        run: Path = typer.Argument(..., help="Run directory or .safetensors model file."),
        reply_to: str = typer.Option(..., help="Where results go: HOST:PORT:AET of the PACS."),
        ae_title: str = typer.Option("RADCNN", help="This node's AE title."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
        port: int = typer.Option(11112, min=0, max=65535, help="DICOM port to listen on."),
        allow_aet: list[str] = typer.Option(
            None, help="Calling AE titles allowed to send (repeatable); default: the --reply-to AE title only."
        ),
        heatmap_method: str = typer.Option("gradcam", help="gradcam | gradcam_pp | integrated_gradients"),
        backend: str = typer.Option("torch", help="torch | onnx (ONNX Runtime, checked against PyTorch at load)."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Receive radiographs from a PACS, predict, and send back a DICOM SR and a heat-map Secondary Capture.

        Both results join the original study (new series). Calling AE titles not allowed are rejected.
        Stop with Ctrl-C or SIGTERM.

        Example: radcnn dicom-node runs/demo --port 11112 --reply-to 127.0.0.1:4242:ORTHANC
        """
        from radcnn.cli.serve_logging import hide_header_warnings, quiet_exporter
        from radcnn.serve.dicom_node import DicomNode, Peer
        from radcnn.serve.predictor import Predictor

        quiet_exporter()
        hide_header_warnings()
        # pynetdicom's INFO/DEBUG lines describe datasets and peers in detail; the node logs what matters itself.
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        peer = Peer.parse(reply_to)
        key = optional_secret(key_file, passphrase_env)
        predictor = Predictor.from_path(run, key=key, backend=backend)
        node = DicomNode(
            predictor,
            reply_to=peer,
            ae_title=ae_title,
            host=host,
            port=port,
            allowed=tuple(allow_aet or ()),
            heatmap_method=heatmap_method,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        node.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            node.stop()
            log.info(
                "DICOM node stopped: %d received, %d refused, %d results delivered, %d failed",
                node.received,
                node.refused,
                node.delivered,
                node.failed,
            )
