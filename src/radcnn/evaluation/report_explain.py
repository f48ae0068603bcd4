"""Grad-CAM heat maps for the report's gallery, when the ``explain`` extra (Captum) is installed.

The report must work without that extra, so nothing here is imported at module level: `find_explainer`
returns ``(None, reason)`` when Grad-CAM cannot run, and the gallery then shows thumbnails only, with the
reason printed in the report. The heat maps come from `radcnn.explain`'s registered ``"gradcam"`` method
(Captum's LayerGradCam on the model's last convolutional layer, attributing the label's logit), the same
code `radcnn explain` uses.
"""

from __future__ import annotations

import logging

import numpy as np

from radcnn.errors import RadcnnError
from radcnn.evaluation.gallery import Explainer

log = logging.getLogger(__name__)

def find_explainer(model, spec) -> tuple[Explainer | None, str]:
    """A Grad-CAM function for ``model`` and a sentence saying what it shows (or why there is none)."""
    try:
        import torch

        from radcnn.explain.gradcam import has_conv
        from radcnn.explain.registry import ExplainSettings, get_explainer, require_captum
        from radcnn.explain.targets import ScoredModel

        require_captum()
        entry = get_explainer("gradcam")
    except ImportError as exc:  # includes MissingExtraError, which names the pip command
        log.info("no Grad-CAM overlays in the report: %s", exc)
        return None, f"Grad-CAM overlays not included: {exc}"
    except RadcnnError as exc:
        log.info("no Grad-CAM overlays in the report: %s", exc)
        return None, f"Grad-CAM overlays not included: {exc}"
    if not has_conv(model):
        return None, "Grad-CAM overlays not included: the model has no convolutional layer"
    target = ScoredModel(model, spec)
    settings = ExplainSettings()

    def explain(images: np.ndarray, label_index: int) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        targets = torch.full((tensor.shape[0],), int(label_index), dtype=torch.long)
        return np.asarray(entry.builder(target, tensor, targets, settings, [0] * tensor.shape[0]), dtype=np.float32)

    note = (
        "Grad-CAM (Captum LayerGradCam, last convolutional layer, the label's logit): brighter = regions that "
        "raised the score. A heat map shows where the model looked, not that the finding is there."
    )
    return explain, note
