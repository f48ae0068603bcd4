"""Inference speed: PyTorch fp32 (the baseline), PyTorch bf16 + channels_last and ONNX Runtime, same run, same
batch; then an HTTP load test of `radcnn serve` on loopback.

Part 1 scores the seed CNN and DenseNet-121 at 224×224 on identical random batches with each backend and
reports images/s, the ratio to eager fp32 and the largest probability difference to fp32 (the price of bf16).
Part 2 starts `radcnn serve` (its own process, stopped by PID) with the seed CNN at 224 and sends 1,000
requests from 8 concurrent clients, one in ten malformed (truncated DICOM, text, empty, random bytes, an
oversized upload): it reports 5xx errors (must be 0), p50/p95 latency, requests/s, the status counts, how many
forward passes served the images (batching) and whether the server still answers at the end.

    python benchmarks/inference.py [--batch 16] [--batches 6] [--requests 1000] [--concurrency 8]
                                   [--server-backend torch|onnx]

Prints one JSON object. The weights are random (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from radcnn.models.checkpoint import save_model
from radcnn.models.export import onnx_bytes
from radcnn.models.onnx_runtime import OnnxRunner
from radcnn.models.registry import create_model
from radcnn.models.spec import ModelSpec
from radcnn.training.precision import cpu_has_native_bf16

SIZE = 224


def timed(run, batch: np.ndarray, warmup: int, batches: int) -> tuple[float, np.ndarray]:
    """images/s over `batches` calls after `warmup`, and the last output."""
    out = None
    for _ in range(warmup):
        out = run(batch)
    start = time.perf_counter()
    for _ in range(batches):
        out = run(batch)
    return batches * len(batch) / (time.perf_counter() - start), np.asarray(out, dtype=np.float32)


def backends(name: str, batch_size: int, batches: int) -> dict:
    torch.manual_seed(0)
    model = create_model(name, in_channels=1, num_outputs=1, input_size=(SIZE, SIZE)).eval()
    spec = ModelSpec(name, (SIZE, SIZE), ("finding",))
    batch = np.random.default_rng(0).random((batch_size, 1, SIZE, SIZE), dtype=np.float32)

    @torch.inference_mode()
    def fp32(x):
        return torch.sigmoid(model(torch.from_numpy(x))).numpy()

    fast = create_model(name, in_channels=1, num_outputs=1, input_size=(SIZE, SIZE)).eval()
    fast.load_state_dict(model.state_dict())
    fast = fast.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def bf16(x):
        tensor = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.sigmoid(fast(tensor).float()).numpy()

    runner = OnnxRunner(onnx_bytes(model, spec))

    def onnxruntime(x):
        return 1 / (1 + np.exp(-runner(x)))

    results, reference = {}, None
    for label, run in (("pytorch_fp32", fp32), ("pytorch_bf16_channels_last", bf16), ("onnxruntime_fp32", onnxruntime)):
        speed, out = timed(run, batch, warmup=2, batches=batches)
        reference = out if reference is None else reference
        results[label] = {
            "images_per_s": round(speed, 2),
            "max_abs_prob_diff_vs_fp32": float(np.max(np.abs(out - reference))),
        }
    base = results["pytorch_fp32"]["images_per_s"]
    for entry in results.values():
        entry["speedup_vs_fp32"] = round(entry["images_per_s"] / base, 2)
    best = max(results, key=lambda k: results[k]["images_per_s"])
    return {"batch": batch_size, "timed_batches": batches, "backends": results, "best": best}


# --- HTTP load test ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payloads(work: Path, n_valid: int = 12) -> tuple[list[bytes], list[bytes]]:
    from radcnn.phantom.synth import synthesize_dataset

    synthesize_dataset(work / "phantom", n_patients=n_valid, size=256, seed=11)
    valid = [p.read_bytes() for p in sorted((work / "phantom" / "images").rglob("*.dcm"))]
    rng = np.random.default_rng(1)
    malformed = [
        valid[0][: len(valid[0]) // 3],  # truncated DICOM → 422
        b"patient,label\nx,1\n",  # text → 415
        b"",  # empty → 400
        rng.bytes(5000),  # random bytes → 415
        bytes(2 << 20),  # over the 1 MiB limit → 413
    ]
    return valid, malformed


def load_test(requests: int, concurrency: int, work: Path, backend: str) -> dict:
    import httpx

    torch.manual_seed(0)
    model = create_model("seed_cnn", in_channels=1, num_outputs=1, input_size=(SIZE, SIZE))
    save_model(model, ModelSpec("seed_cnn", (SIZE, SIZE), ("nodule",)), work / "model.safetensors")
    (work / "token").write_text("benchmark-token-0123456789\n")
    port = free_port()
    command = [str(Path(sys.executable).with_name("radcnn")), "serve", str(work / "model.safetensors")]
    command += ["--port", str(port), "--token-file", str(work / "token"), "--max-upload-mb", "1", "--backend", backend]
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": "Bearer benchmark-token-0123456789"}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        valid, malformed = payloads(work)
        plan = [malformed[i // 10 % len(malformed)] if i % 10 == 9 else valid[i % len(valid)] for i in range(requests)]
        client = httpx.Client(base_url=base, headers=headers, timeout=60)

        def send(data: bytes) -> tuple[int, float]:
            start = time.perf_counter()
            try:
                status = client.post("/v1/predict", files={"file": ("image", data)}).status_code
            except httpx.HTTPError:
                status = -1  # connection dropped: counted apart from HTTP statuses
            return status, 1000 * (time.perf_counter() - start)

        send(valid[0])  # warm-up (first-request imports)
        before = client.get("/v1/health").json()
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            outcomes = list(pool.map(send, plan))
        elapsed = time.perf_counter() - start
        health = client.get("/v1/health")
        after = health.json()
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    statuses = [s for s, _ in outcomes]
    latencies = np.array([ms for _, ms in outcomes])
    passes = after["forward_passes"] - before["forward_passes"]
    scored = after["images_scored"] - before["images_scored"]
    return {
        "model": f"seed_cnn 224x224 (random weights), {backend} backend",
        "requests": requests,
        "concurrency": concurrency,
        "malformed": sum(i % 10 == 9 for i in range(requests)),
        "errors_5xx": sum(500 <= s < 600 for s in statuses),
        "connection_errors": statuses.count(-1),
        "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "requests_per_s": round(requests / elapsed, 1),
        "forward_passes": passes,
        "mean_batch": round(scored / max(passes, 1), 2),
        "server_alive_after": health.status_code == 200,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seed_cnn,densenet121")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server-backend", default="torch", help="torch | onnx, for the HTTP load test")
    args = parser.parse_args()
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # torchvision-operator notices, irrelevant here
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "native_bf16": cpu_has_native_bf16(),
            "torch": torch.__version__,
            "load_average_1min_at_start": round(os.getloadavg()[0], 2),  # the machine may be shared: say how busy
        },
        "inference_224": {name: backends(name, args.batch, args.batches) for name in args.models.split(",")},
    }
    with tempfile.TemporaryDirectory() as tmp:
        report["http_load"] = load_test(args.requests, args.concurrency, Path(tmp), args.server_backend)
    report["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
