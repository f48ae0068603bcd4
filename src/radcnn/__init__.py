"""radcnn: CNN-based chest radiograph classification — data, training, evaluation, explanation, privacy.

The curated public API is listed in `__all__`; names are imported on first use so that `import radcnn` stays
fast (torch, Lightning and MONAI load only when a function that needs them is touched).
"""

from __future__ import annotations

from radcnn.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "DataConfig": "radcnn.config",
    "ModelConfig": "radcnn.config",
    "ModelSpec": "radcnn.models.spec",
    "Predictor": "radcnn.serve.predictor",
    "RadcnnError": "radcnn.errors",
    "RunConfig": "radcnn.config",
    "RunDir": "radcnn.runs",
    "TrainConfig": "radcnn.config",
    "build_cache": "radcnn.data.cache.build",
    "check_leakage": "radcnn.data.splits",
    "choose_threshold": "radcnn.evaluation.thresholds",
    "create_model": "radcnn.models.registry",
    "cross_validate": "radcnn.cross_validation",
    "decrypt_file": "radcnn.encryption",
    "deidentify_tree": "radcnn.privacy",
    "detect_layout": "radcnn.data.layouts",
    "encrypt_file": "radcnn.encryption",
    "evaluate_external": "radcnn.reporting.external",
    "evaluate_run": "radcnn.reporting.evaluate_run",
    "explain_images": "radcnn.explain",
    "fit": "radcnn.training.fit",
    "generate_report": "radcnn.reporting.report",
    "load_config": "radcnn.config",
    "load_input": "radcnn.data.inputs",
    "load_layout": "radcnn.data.layouts",
    "load_medmnist": "radcnn.data.layouts.medmnist_arrays",
    "load_model": "radcnn.models.checkpoint",
    "metrics_with_ci": "radcnn.evaluation.bootstrap",
    "prepare_data": "radcnn.data.prepare",
    "read_image": "radcnn.data.readers.dispatch",
    "save_model": "radcnn.models.checkpoint",
    "split_by_patient": "radcnn.data.splits",
    "synthesize_dataset": "radcnn.phantom.synth",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("radcnn", _EXPORTS, globals())
