"""De-identification throughput (files/s) on phantom CR/DX DICOMs, radcnn beside dicognito on the same files.

    python benchmarks/deid_speed.py --files 300 --size 1024 --workers 2

Both tools read every file, de-identify it and write it to a new folder; both run once in one process and once
with `--workers` processes (dicognito has no parallel mode, so its files are split across a process pool the
same way). radcnn runs the basic profile with burned_in=allow, because dicognito does not look at pixels and
the phantom's CR files carry no BurnedInAnnotation (radcnn's default would quarantine them). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def make_phantoms(folder: Path, n_files: int, size: int, seed: int = 0) -> int:
    """Write `n_files` phantom studies (several per patient) and return their total size in bytes."""
    from radcnn.phantom.generator import render_study, sample_patient
    from radcnn.phantom.writers import write_dicom

    written, patient = 0, 0
    while written < n_files:
        spec = sample_patient(seed, patient)
        for study in range(len(spec.studies)):
            if written == n_files:
                break
            image = render_study(spec, study, size=size).image
            target = folder / f"p{patient:04d}" / f"s{study}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_dicom(target, image, spec, study)
            written += 1
        patient += 1
    return sum(p.stat().st_size for p in folder.rglob("*.dcm"))


def _dicognito_batch(args: tuple[list[str], str, str]) -> int:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    files, src, dst = args
    anonymizer = Anonymizer(seed="radcnn-benchmark")  # seeded: consistent across processes, like radcnn's key
    for name in files:
        ds = pydicom.dcmread(name)
        anonymizer.anonymize(ds)
        target = Path(dst) / Path(name).relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target)
    return len(files)


def run_dicognito(src: Path, dst: Path, workers: int) -> float:
    files = sorted(str(p) for p in src.rglob("*.dcm"))
    start = time.perf_counter()
    if workers == 1:
        _dicognito_batch((files, str(src), str(dst)))
    else:
        batches = [(files[i::workers], str(src), str(dst)) for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_dicognito_batch, batches))
    return time.perf_counter() - start


def run_radcnn(src: Path, dst: Path, workers: int) -> float:
    from radcnn.privacy import DeidConfig, deidentify_tree

    start = time.perf_counter()
    summary = deidentify_tree(src, dst, b"\x42" * 32, DeidConfig(burned_in="allow", workers=workers))
    elapsed = time.perf_counter() - start
    if summary.count("ok") != len(summary.results):
        raise RuntimeError(f"radcnn wrote {summary.count('ok')} of {len(summary.results)} files")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per configuration")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="radcnn-deid-bench-"))
    try:
        src = root / "in"
        total_bytes = make_phantoms(src, args.files, args.size)
        results = {}
        for tool, runner in (("radcnn", run_radcnn), ("dicognito", run_dicognito)):
            for workers in sorted({1, args.workers}):
                times = []
                for r in range(args.repeats):
                    out = root / f"{tool}-{workers}-{r}"
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        times.append(runner(src, out, workers))
                    shutil.rmtree(out)
                best = min(times)
                results[f"{tool}_workers{workers}"] = {
                    "seconds": round(best, 3),
                    "files_per_s": round(args.files / best, 1),
                    "MB_per_s": round(total_bytes / best / 1e6, 1),
                }
        ratio = {
            f"radcnn_over_dicognito_workers{w}": round(
                results[f"radcnn_workers{w}"]["files_per_s"] / results[f"dicognito_workers{w}"]["files_per_s"], 2
            )
            for w in sorted({1, args.workers})
        }
        import dicognito

        print(
            json.dumps(
                {
                    "benchmark": "deid_speed",
                    "files": args.files,
                    "image_side": args.size,
                    "mean_file_MB": round(total_bytes / args.files / 1e6, 3),
                    "cpu_count": os.cpu_count(),
                    "python": platform.python_version(),
                    "dicognito_version": getattr(dicognito, "__version__", "unknown"),
                    "results": results,
                    "ratio": ratio,
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
