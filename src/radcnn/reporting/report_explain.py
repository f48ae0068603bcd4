"""Grad-CAM heat maps for the report's gallery, when the ``explain`` extra (Captum) is installed.

The report must work without that extra, so nothing here is imported at module level: `find_explainer`
returns ``(None, reason)`` when Grad-CAM cannot run, and the gallery then shows thumbnails only, with the
reason printed in the report. The maps come from `radcnn.explain.explain_images` with the ``"gradcam"`` method
(Captum's LayerGradCam on the model's last convolutional layer, attributing the label's logit) — the same code
and settings as `radcnn explain`.
"""

from __future__ import annotations

import logging

import numpy as np

from radcnn.errors import RadcnnError
from radcnn.reporting.gallery import Explainer

log = logging.getLogger(__name__)

METHOD = "gradcam"


def find_explainer(model, spec) -> tuple[Explainer | None, str]:
    """A Grad-CAM function for ``model`` and a sentence saying what it shows (or why there is none)."""
    try:
        from radcnn.explain import explain_images
        from radcnn.explain.gradcam import has_conv
        from radcnn.explain.registry import require_captum

        require_captum()
    except (ImportError, RadcnnError) as exc:  # ImportError includes MissingExtraError, which names the pip command
        log.info("no Grad-CAM overlays in the report: %s", exc)
        return None, f"Grad-CAM overlays not included: {exc}"
    if not has_conv(model):
        return None, "Grad-CAM overlays not included: the model has no convolutional layer"

    def explain(images: np.ndarray, label_index: int) -> np.ndarray:
        results = explain_images(model, spec, list(images), METHOD, target=int(label_index), seed=0)
        return np.stack([result.maps[METHOD] for result in results]).astype(np.float32)

    note = (
        "Right of each image: Grad-CAM (Captum LayerGradCam on the last convolutional layer, for the label's "
        "logit); brighter = regions that raised the score. A heat map shows where the model looked, not that "
        "the finding is there."
    )
    return explain, note
