"""`OnnxRunner`: an ONNX model on ONNX Runtime's CPU provider, called like the PyTorch model it came from.

(N, C, H, W) float32 in, logits (N, outputs) out. The thread count follows PyTorch's (`torch.get_num_threads`)
unless given, so switching `--backend` does not silently change how many cores a server takes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radcnn.errors import MissingExtraError, ModelError


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtraError("onnxruntime", "serve") from None
    return onnxruntime


class OnnxRunner:
    """One InferenceSession over a serialised model (bytes) or a `.onnx` file."""

    def __init__(self, model: bytes | str | Path, *, threads: int | None = None):
        ort = _onnxruntime()
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for files it cannot load
            where = "the exported model" if isinstance(model, bytes) else str(model)
            raise ModelError(f"{where}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
