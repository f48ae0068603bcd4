"""Decode-once cache: build throughput against a single-process pydicom loop, and cache read throughput.

    python benchmarks/decode_cache.py --uncompressed 300 --j2k 40 --rle 40 --size 1024 --workers 2

Writes its own 12-bit 1024×1024 DICOM files into a temporary folder (each file distinct: a smooth chest-like
body, rib-like bands and per-file quantum noise, so that the lossless codecs see realistic ~2:1 data), then
measures on the same files, per transfer syntax and overall:

* ``pydicom_loop``: ``dcmread(f).pixel_array`` in one process — the bare decode, nothing else;
* ``serial_pipeline``: ``preprocess(read_image(f, target_size=224×224), 224×224)`` in one process — the same
  work the cache does (JPEG 2000 decoded at the smallest resolution level ≥ 224, modality LUT, window, resize),
  without hashing, processes or the store;
* ``parallel_cache``: ``build_cache(..., workers=N)`` into a fresh cache (read + hash + decode + window + resize
  + quantise in N worker processes, rows copied into the memory map);

and the cache's read throughput at 224×224 (random single images via ``cached[i]``, and 64-image batches).
Prints one JSON object. The machine's load average is recorded: other work on a 2-core machine lowers the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

TS = {"uncompressed": "1.2.840.10008.1.2.1", "j2k": "1.2.840.10008.1.2.4.90", "rle": "1.2.840.10008.1.2.5"}


def synthetic_radiograph(size: int, rng: np.random.Generator) -> np.ndarray:
    """A 12-bit chest-like image: bright body, darker lungs, rib bands, Poisson-like noise (uint16 0..4095)."""
    y, x = np.mgrid[0:size, 0:size] / size
    body = np.exp(-(((x - 0.5) / 0.42) ** 4 + ((y - 0.55) / 0.5) ** 4))
    lungs = sum(np.exp(-(((x - cx) / 0.14) ** 2 + ((y - 0.48) / 0.25) ** 2)) for cx in (0.33, 0.67))
    ribs = 0.08 * np.sin(2 * np.pi * (y * 9 + 0.3 * np.abs(x - 0.5))) * (lungs > 0.2)
    signal = 500 + 2600 * body - 1300 * lungs + 900 * ribs + rng.uniform(-150, 150)
    noisy = signal + rng.normal(0, 1, signal.shape) * np.sqrt(np.clip(signal, 1, None)) * 0.9
    return np.clip(noisy, 0, 4095).astype(np.uint16)


def write_files(folder: Path, counts: dict[str, int], size: int, seed: int) -> dict[str, list[Path]]:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(seed)
    files: dict[str, list[Path]] = {}
    for kind, n in counts.items():
        files[kind] = []
        for k in range(n):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = TS["uncompressed"]
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.SOPClassUID, ds.SOPInstanceUID = (
                ds.file_meta.MediaStorageSOPClassUID,
                ds.file_meta.MediaStorageSOPInstanceUID,
            )
            ds.Modality, ds.PatientID, ds.ViewPosition = "DX", f"P{k:05d}", "PA"
            ds.Rows = ds.Columns = size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.RescaleSlope, ds.RescaleIntercept = 1, 0
            ds.WindowCenter, ds.WindowWidth = 2000, 3500
            ds.PixelData = synthetic_radiograph(size, rng).tobytes()
            if kind != "uncompressed":
                ds.compress(TS[kind])
            path = folder / f"{kind}_{k:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files[kind].append(path)
    return files


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the cache's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `run()`."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    run()
    return time.perf_counter() - start, _cpu_seconds() - cpu


def pydicom_loop(paths: list[Path]) -> None:
    import pydicom

    for path in paths:
        pydicom.dcmread(path).pixel_array  # noqa: B018 - decoding is the point


def serial_pipeline(paths: list[Path], size: tuple[int, int]) -> None:
    from radcnn.data.readers.dispatch import read_image
    from radcnn.data.transforms import preprocess

    for path in paths:
        preprocess(read_image(path, target_size=size)[0], size)


def parallel_cache(paths: list[Path], size: tuple[int, int], cache_dir: Path, workers: int) -> None:
    from radcnn.data.cache.build import build_cache

    cached = build_cache(paths, size=size, cache_dir=cache_dir, workers=workers)
    assert cached.decoded == len(paths) and cached.valid.all()


def read_throughput(cached, seconds: float = 1.5) -> dict[str, float]:
    rng = np.random.default_rng(0)
    n, done, start = len(cached), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in rng.permutation(n):
            cached[int(i)]
        done += n
    single = done / (time.perf_counter() - start)
    from radcnn.data.cache.store import to_float

    array, done, start = cached.array(), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for first in range(0, n, 64):
            to_float(array[first : first + 64])
        done += n
    return {"single_images_per_s": round(single), "batch64_images_per_s": round(done / (time.perf_counter() - start))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uncompressed", type=int, default=300)
    parser.add_argument("--j2k", type=int, default=40)
    parser.add_argument("--rle", type=int, default=40)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best (lowest) wall time of this many runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # a benchmark script, not library code
    out_size = (224, 224)
    counts = {"uncompressed": args.uncompressed, "j2k": args.j2k, "rle": args.rle}
    counts = {k: v for k, v in counts.items() if v > 0}
    result: dict = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "image": [args.size] * 2}
    with tempfile.TemporaryDirectory(prefix="radcnn-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        files = write_files(folder, counts, args.size, args.seed)
        result["generate_s"] = round(time.perf_counter() - start, 1)
        result["bytes_per_file"] = {k: int(np.mean([p.stat().st_size for p in v])) for k, v in files.items()}
        for paths in files.values():  # warm the page cache so that every method reads from memory
            for path in paths:
                path.read_bytes()
        result["load_before"] = [round(v, 2) for v in os.getloadavg()]
        groups = {**files, "all": [p for v in files.values() for p in v]}
        per_group = {}
        for name, paths in groups.items():
            runs: dict[str, list[tuple[float, float]]] = {"loop": [], "serial": [], "parallel": []}
            for _ in range(args.repeat):  # interleaved, so that a burst of other load hits all three alike
                cache_dir = folder / f"cache-{name}"
                shutil.rmtree(cache_dir, ignore_errors=True)
                runs["loop"].append(timed(lambda paths=paths: pydicom_loop(paths)))
                runs["serial"].append(timed(lambda paths=paths: serial_pipeline(paths, out_size)))
                runs["parallel"].append(
                    timed(lambda p=paths, d=cache_dir: parallel_cache(p, out_size, d, args.workers))
                )
            best = {k: min(v) for k, v in runs.items()}  # (wall, cpu) of the fastest run
            n = len(paths)
            per_group[name] = {
                "files": n,
                "pydicom_loop_files_per_s": round(n / best["loop"][0], 1),
                "serial_pipeline_files_per_s": round(n / best["serial"][0], 1),
                "parallel_cache_files_per_s": round(n / best["parallel"][0], 1),
                "ratio_parallel_vs_pydicom_loop": round(best["loop"][0] / best["parallel"][0], 2),
                "ratio_parallel_vs_serial_pipeline": round(best["serial"][0] / best["parallel"][0], 2),
                "cpu_ms_per_file": {k: round(1000 * v[1] / n, 2) for k, v in best.items()},
            }
        result["build"] = per_group
        from radcnn.data.cache.build import build_cache

        cached = build_cache(groups["all"], size=out_size, cache_dir=folder / "cache-all", workers=args.workers)
        assert cached.decoded == 0
        result["read_224"] = read_throughput(cached)
        result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
