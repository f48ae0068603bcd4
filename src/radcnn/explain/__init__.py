"""Explain predictions (Grad-CAM, Grad-CAM++, Integrated Gradients, Gradient SHAP, Occlusion, LIME, Kernel SHAP)
and score the explanations (deletion/insertion faithfulness, pointing game, mass in boxes, sanity check).

Methods are built on Captum and scikit-image (the `explain` extra). Entry points:

* `explain_images(model, spec, images, methods, target=..., seed=...)` → one `ImageExplanation` per image;
  `write_explanations(...)` writes the maps (.npy), overlays (.png) and a self-contained gallery.html.
* `explain_run_gallery(run_dir, out_dir)` — a few of a run's test images, for the evaluation report.
* `score_explanations(...)` / `evaluate_run_explanations(run_dir)` — the score table of `radcnn explain-eval`.
"""

from radcnn.explain.evaluate import ExplainEvaluation, MethodScores, evaluate_run_explanations, score_explanations
from radcnn.explain.registry import EXPLAINERS, ExplainSettings, ExplanationError, explainer_names, parse_methods
from radcnn.explain.run import ExplainOutput, ImageExplanation, explain_files, explain_images, write_explanations
from radcnn.explain.runs import explain_run_gallery

__all__ = [
    "EXPLAINERS",
    "ExplainEvaluation",
    "ExplainOutput",
    "ExplainSettings",
    "ExplanationError",
    "ImageExplanation",
    "MethodScores",
    "evaluate_run_explanations",
    "explain_files",
    "explain_images",
    "explain_run_gallery",
    "explainer_names",
    "parse_methods",
    "score_explanations",
    "write_explanations",
]
