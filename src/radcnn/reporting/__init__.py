"""Run-level results: evaluating a run (`evaluate_run` module), external validation (`evaluate_external`), the HTML/JSON
report with its plots, gallery and model card, and comparisons between runs. The numbers come from the pure
functions of `radcnn.evaluation`."""

from __future__ import annotations

from radcnn.lazy import lazy_exports

_EXPORTS = {
    "evaluate_external": "radcnn.reporting.external",
    "generate_report": "radcnn.reporting.report",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("radcnn.reporting", _EXPORTS, globals())
