"""Seconds per image of every explanation method at the default settings, on phantom radiographs. Prints JSON.

    python benchmarks/explain_speed.py --model seed_cnn --size 224 --images 3
    python benchmarks/explain_speed.py --weights runs/demo/run/best_model.safetensors --size 224

Each method explains the same `--images` phantom radiographs one call per image (after one warm-up call, which
pays for imports and the Grad-CAM layer search); the median over images is reported with the settings that
define the cost (samples, superpixels, steps, patch geometry). For context the JSON also gives the time of one
forward pass at batch 1 and at the perturbation batch size, in the same run, plain eager fp32, and in the
channels-last layout that the perturbation methods switch to (same values, about twice as fast on CPU). The weights are random unless `--weights` names a trained model: the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch


def phantom_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    from radcnn.data.transforms import preprocess
    from radcnn.phantom.generator import render_study, sample_patient

    return np.stack(
        [preprocess(render_study(sample_patient(seed, i), 0, size=256).image, (size, size)) for i in range(n)]
    )


def forward_seconds(model: torch.nn.Module, size: int, batch: int, repeat: int = 3, fast: bool = False) -> float:
    """One forward pass, plain eager fp32, or (`fast`) in the channels-last layout the perturbation methods use."""
    from radcnn.explain.targets import channels_last

    x = torch.rand(batch, 1, size, size)
    with torch.inference_mode(), channels_last(model) if fast else contextlib.nullcontext():
        model(x)
        began = time.perf_counter()
        for _ in range(repeat):
            model(x)
    return (time.perf_counter() - began) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seed_cnn", help="registered architecture (ignored with --weights)")
    parser.add_argument("--weights", default=None, help="a radcnn .safetensors model instead of random weights")
    parser.add_argument("--size", type=int, default=224, help="input side in pixels")
    parser.add_argument("--images", type=int, default=3, help="images per method")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--samples", type=int, default=None, help="LIME / Kernel SHAP samples (default: radcnn's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    from radcnn.explain.attribution import GRADIENT_SHAP_SAMPLES, occlusion_geometry
    from radcnn.explain.registry import ExplainSettings, parse_methods
    from radcnn.explain.run import explain_images
    from radcnn.explain.superpixel import SUPERPIXEL_SAMPLES
    from radcnn.models.spec import ModelSpec

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        from radcnn.models.checkpoint import load_model

        model, spec = load_model(args.weights)
        size = int(spec.input_size[0])
    else:
        from radcnn.models.registry import create_model

        torch.manual_seed(0)
        size = args.size
        model = create_model(args.model, input_size=(size, size)).eval()
        spec = ModelSpec(args.model, (size, size), ("nodule",))
    settings = ExplainSettings(n_samples=args.samples)
    images = phantom_images(args.images, size)
    per_method = {}
    for method in parse_methods(args.methods):
        explain_images(model, spec, images[:1], method, settings=settings)  # warm-up
        seconds = []
        for image in images:
            began = time.perf_counter()
            explain_images(model, spec, image, method, settings=settings)
            seconds.append(time.perf_counter() - began)
        per_method[method] = {"seconds_per_image": round(statistics.median(seconds), 3), "runs": len(seconds)}
        print(f"{method}: {per_method[method]['seconds_per_image']:.3f} s/image", flush=True, file=sys.stderr)
    window, stride = occlusion_geometry(size, size, settings)
    result = {
        "benchmark": "explain_speed",
        "model": spec.architecture,
        "weights": args.weights or "random",
        "input": f"{size}x{size}",
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "settings": {
            "lime_kernel_shap_samples": settings.n_samples or SUPERPIXEL_SAMPLES,
            "superpixels": settings.n_segments,
            "perturbations_per_eval": settings.perturbations_per_eval,
            "ig_steps": settings.ig_steps,
            "gradient_shap_samples": settings.n_samples or GRADIENT_SHAP_SAMPLES,
            "occlusion_window_stride": [window, stride],
        },
        "forward_seconds": {
            "batch_1": round(forward_seconds(model, size, 1), 4),
            f"batch_{settings.perturbations_per_eval}": round(
                forward_seconds(model, size, settings.perturbations_per_eval), 4
            ),
            f"batch_{settings.perturbations_per_eval}_channels_last": round(
                forward_seconds(model, size, settings.perturbations_per_eval, fast=True), 4
            ),
        },
        "methods": per_method,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
