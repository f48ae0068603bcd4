"""Logging set-up shared by the serving commands (serve, dicom-node, export, predict --backend onnx).

Kept in cli/ because only the command line may change global logging and warning filters.
"""

from __future__ import annotations

import logging
import warnings


def quiet_exporter() -> None:
    """PyTorch's ONNX exporter warns about torchvision operators radcnn never uses; keep its real errors."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


def hide_header_warnings() -> None:
    """pydicom's warnings about malformed header values quote the values, and those can be patient names or IDs.

    A server must not write them to its log, so they are dropped; the reader's own notes (which never quote
    identifying values) still reach the log and every prediction.
    """
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")
