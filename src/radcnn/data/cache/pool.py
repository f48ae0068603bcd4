"""The one decode worker pool: many files → quantised model-input rows, in parallel worker processes.

Both stores run on it: the on-disk decode-once cache (`build`) and the in-memory store for data encrypted at rest
(`memory`). A worker reads each file once, decrypts it in memory when it is encrypted (with the job's key),
hashes the plaintext bytes (the content key: the cache's row key and the leakage check's evidence), decodes it
with `radcnn.data.inputs.decode_input` — the same function `radcnn predict` uses — and quantises the result to
uint16, so the parent process only copies finished rows.

Errors come back as data (`DecodedFile.error`) so the caller applies its on_error policy; an authentication
failure (wrong key, tampered or truncated encrypted file) is raised instead, because skipping it would hide
tampering. Workers are forked: they start in milliseconds, inherit the imported modules and receive the job —
key included — once, through the initializer, so the key never crosses a disk.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radcnn.data.cache.store import content_key, quantize
from radcnn.data.inputs import InputSpec, decode_input, read_source
from radcnn.errors import ConfigError, DataError, ImageReadError

_IN_FLIGHT_PER_WORKER = 3  # tasks queued per worker: enough to never leave one idle
_MAX_FILES_PER_TASK = 4


@dataclass(frozen=True)
class DecodeJob:
    """What every worker needs, sent once per worker."""

    spec: InputSpec
    key: Any = None  # a radcnn.encryption.keys.Secret or raw key bytes, for files encrypted at rest
    known: frozenset[str] = field(default_factory=frozenset)  # content keys already stored: hashed, not decoded


@dataclass(frozen=True)
class DecodedFile:
    index: int  # position in the list given to `decode_files`
    path: str
    content_key: str | None = None  # XXH3-128 of the plaintext bytes
    stat: tuple[int, int] | None = None  # (size, mtime_ns) of the stored file
    row: np.ndarray | None = None  # uint16 (H, W); None when the content was known already or on error
    error: str | None = None


def check_workers(workers: int) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    return workers


def decode_files(paths: Sequence[str], job: DecodeJob, *, workers: int = 2) -> Iterator[DecodedFile]:
    """Yield one `DecodedFile` per path, in completion order (``index`` says which)."""
    check_workers(workers)
    if workers == 1 or len(paths) < 2:
        _use_job(job)
        for i, path in enumerate(paths):
            yield _decode_one(i, path)
        return
    # A task is a few files: fewer round trips through the executor's queues for cheap (uncompressed) files,
    # while keeping ~16 tasks per worker so that the last ones still balance across the workers.
    per_task = max(1, min(_MAX_FILES_PER_TASK, len(paths) // (workers * 16)))
    tasks = iter([list(range(i, min(i + per_task, len(paths)))) for i in range(0, len(paths), per_task)])
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    executor = cf.ProcessPoolExecutor(
        max_workers=min(workers, len(paths)), mp_context=context, initializer=_init_worker, initargs=(job,)
    )
    pending: dict[cf.Future, list[int]] = {}

    def submit(task: list[int]) -> None:
        pending[executor.submit(_decode_task, [(i, str(paths[i])) for i in task])] = task

    try:
        for task in tasks:
            submit(task)
            if len(pending) >= workers * _IN_FLIGHT_PER_WORKER:
                break
        while pending:
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool as exc:
                    in_flight = ", ".join(str(paths[i]) for t in (task, *pending.values()) for i in t)
                    raise DataError(f"a decoding worker crashed while reading one of: {in_flight}") from exc
                following = next(tasks, None)
                if following is not None:  # refill before yielding: the consumer may take a while
                    submit(following)
                yield from results
    finally:
        with contextlib.suppress(BrokenProcessPool):  # already reported above when it happened
            executor.shutdown(wait=True, cancel_futures=True)


# Set once in each worker process by its initializer (the known-content set and the key are not sent per task).
_job: DecodeJob | None = None
_kek_cache = None


def _init_worker(job: DecodeJob) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (it keeps the rows finished so far and stops
    # the pool); a worker printing its own KeyboardInterrupt traceback would only bury that message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _use_job(job)


def _use_job(job: DecodeJob) -> None:
    global _job, _kek_cache
    _job = job
    if job.key is not None:
        # Files encrypted in one `radcnn encrypt` run share a salt: a passphrase is stretched by scrypt once per
        # worker rather than once per file.
        from radcnn.encryption.cipher import KekCache

        _kek_cache = KekCache()
    else:
        _kek_cache = None


def _decode_task(items: list[tuple[int, str]]) -> list[DecodedFile]:
    return [_decode_one(i, path) for i, path in items]


def _decode_one(index: int, path: str) -> DecodedFile:
    assert _job is not None, "worker used before _init_worker"
    try:
        stat = os.stat(path) if os.path.isfile(path) else None
        plain, data = read_source(path, key=_job.key, cache=_kek_cache)
        key = content_key(data)
        stamp = (stat.st_size, stat.st_mtime_ns) if stat is not None else None
        if key in _job.known:
            return DecodedFile(index, path, key, stamp)
        row = quantize(decode_input(plain, data, _job.spec).array[0])
    except ImageReadError as exc:
        return DecodedFile(index, path, error=exc.reason)
    except OSError as exc:
        return DecodedFile(index, path, error=f"cannot read file: {exc.strerror or exc}")
    return DecodedFile(index, path, key, stamp, row)
