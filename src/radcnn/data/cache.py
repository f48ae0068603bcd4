"""The decode-once cache: every image is read, windowed and resized once, in parallel, into a memory map.

Training then slices a uint16 memory map instead of decoding DICOM every epoch. `build_cache` hands the files
that are not cached yet to `workers` processes; each worker reads the file once, hashes those bytes (the cache key
is the file *content*), decodes them with `read_image_bytes`, runs `preprocess` and quantises to uint16, so the
main process only copies finished rows into the store. The store's layout, keys and crash-safety rules are in
`radcnn.data.cache_store`.

An interrupted build (an exception, Ctrl-C, a progress callback that raises) checkpoints the rows finished so far
before the exception propagates; the next call with the same arguments decodes only the rest.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from radcnn.data.cache_store import STORAGE_SCALE, RowStore, content_key, digest, quantize, to_float
from radcnn.data.preprocess import check_size, preprocess
from radcnn.data.reader import read_image_bytes
from radcnn.data.windowing import Window, check_window
from radcnn.errors import ConfigError, DataError, ImageReadError

__all__ = ["CachedImages", "build_cache", "preprocess", "to_float"]

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
_CHECKPOINT_SECONDS = 2.0
_IN_FLIGHT_PER_WORKER = 3  # tasks queued per worker: enough to never leave one idle
_MAX_FILES_PER_TASK = 4


class CachedImages:
    """Preprocessed images of `paths`, row-aligned with them, backed by a read-only uint16 memory map.

    ``cached[i]`` is float32 (1, H, W) in [0, 1]; ``array()`` is the raw (N, 1, H, W) uint16 memory map (divide by
    ``scale`` — or call `to_float` — to get [0, 1]). Rows of files that failed under ``on_error="skip"`` are zeros
    in ``array()``, False in ``valid``, listed in ``skipped``, and ``cached[i]`` raises ImageReadError for them.
    """

    scale = STORAGE_SCALE

    def __init__(self, images: np.ndarray, paths: list[Path], skipped: list[tuple[Path, str]], *, decoded: int):
        self._images = images
        self.paths = paths
        self.skipped = skipped
        self.decoded = decoded  # files decoded by the build that produced this object (the rest were cached)
        self._reasons = {str(p): why for p, why in skipped}
        self.valid = np.array([str(p) not in self._reasons for p in paths], dtype=bool)

    def __getstate__(self) -> dict:
        # Pickling a np.memmap copies its whole content; DataLoader workers get the file location instead.
        state = self.__dict__.copy()
        images = self._images
        if isinstance(images, np.memmap) and images.filename:
            state["_images"] = (images.filename, images.offset, images.shape, images.dtype.str)
        return state

    def __setstate__(self, state: dict) -> None:
        images = state["_images"]
        if isinstance(images, tuple):
            filename, offset, shape, dtype = images
            state["_images"] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, int | np.integer):
            raise TypeError(f"CachedImages index must be an integer, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        if not self.valid[i]:
            path = self.paths[i]
            raise ImageReadError(path, f"skipped while caching: {self._reasons[str(path)]}")
        return to_float(self._images[i])

    def array(self) -> np.ndarray:
        """The whole store as an (N, 1, H, W) uint16 memory map (values × 1/65535 = [0, 1])."""
        return self._images

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, 1, H, W), as for the arrays the images come back in."""
        return tuple(self._images.shape)

    def batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 (n, 1, H, W) for several rows at once (read in ascending order: fastest on a memmap)."""
        idx = np.asarray(indices, dtype=np.intp)
        if not self.valid[idx].all():
            path = self.paths[int(idx[~self.valid[idx]][0])]
            raise ImageReadError(path, f"skipped while caching: {self._reasons[str(path)]}")
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx), *self._images.shape[1:]), dtype=np.float32)
        out[order] = to_float(self._images[idx[order]])
        return out


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    *,
    size: tuple[int, int],
    cache_dir: str | os.PathLike[str],
    window: Window = "stored",
    workers: int = 2,
    on_error: str = "fail",
    progress: Callable[[int, int], None] | None = None,
) -> CachedImages:
    """Decode and preprocess `paths` once into the cache at `cache_dir`; return the row-aligned result.

    ``progress(done, total)`` is called after every file this call processes (``done`` counts the files that were
    already cached too); when everything was cached it is called once with (total, total). With
    ``on_error="fail"`` the first unreadable file raises ImageReadError (finished rows are kept); with ``"skip"``
    failures are collected in ``.skipped`` and logged.
    """
    size = check_size(size)
    window = check_window(window)
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    paths = [Path(p) for p in paths]
    absolute = [os.path.abspath(p) for p in paths]
    store = RowStore(Path(cache_dir), size, window)
    keys: dict[str, str] = {}
    failures: dict[str, str] = {}
    decoded = 0
    with store.locked():
        todo = []
        for path in dict.fromkeys(absolute):  # each distinct file once, in order
            sha = store.known(path, _stat(path))
            if sha is None:
                todo.append(path)
            else:
                keys[path] = sha
        total = len(absolute)
        if todo:
            log.info("caching %d of %d images at %s into %s", len(todo), total, size, store.directory)
            decoded = _run(store, todo, size, window, workers, on_error, progress, keys, failures, total)
        elif progress is not None:
            progress(total, total)
        order = np.array([store.content[keys[p]] if p in keys else -1 for p in absolute], dtype=np.int64)
        images = store.aligned(digest("\n".join(absolute)), order)
    skipped = [(p, failures[a]) for p, a in zip(paths, absolute, strict=True) if a in failures]
    if skipped:
        log.warning("%d of %d images could not be cached and were skipped", len(skipped), len(paths))
    return CachedImages(images, paths, skipped, decoded=decoded)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _run(store, todo, size, window, workers, on_error, progress, keys, failures, total) -> int:
    """Process `todo`, checkpointing the index every few seconds and on any exit; return the files decoded."""
    first_slot = store.reserve(len(todo))
    slots = {path: first_slot + i for i, path in enumerate(todo)}
    done, decoded = total - len(todo), 0
    last_commit = time.monotonic()
    known = frozenset(store.content)  # content already stored under another path/mtime: hashed, not decoded
    try:
        with contextlib.closing(_results(todo, size, window, workers, known)) as results:
            for path, sha, stat, row, error in results:
                done += 1
                decoded += row is not None or error is not None
                _record(store, path, slots[path], sha, stat, row, error, on_error, keys, failures)
                if progress is not None:
                    progress(done, total)
                if time.monotonic() - last_commit > _CHECKPOINT_SECONDS:
                    store.commit()
                    last_commit = time.monotonic()
    finally:
        store.commit()
    return decoded


def _record(store, path, slot, sha, stat, row, error, on_error, keys, failures) -> None:
    if error is not None:
        if on_error == "fail":
            raise ImageReadError(path, error)
        log.warning("%s: skipped: %s", path, error)
        failures[path] = error
        return
    if row is not None:
        store.add(sha, row, slot)
    store.files[path] = [stat[0], stat[1], sha]
    keys[path] = sha


def _results(todo: list[str], size, window, workers: int, known: frozenset[str]):
    """Yield (path, sha, (size, mtime_ns), uint16 row | None, error) per path, in completion order."""
    if workers == 1 or len(todo) == 1:
        for path in todo:
            yield _process_file(path, size, window, known)
        return
    # A task is a few files: fewer round trips through the executor's queues for cheap (uncompressed) files,
    # while keeping ~16 tasks per worker so that the last ones still balance across the workers.
    per_task = max(1, min(_MAX_FILES_PER_TASK, len(todo) // (workers * 16)))
    tasks = iter([todo[i : i + per_task] for i in range(0, len(todo), per_task)])
    # fork: workers start in milliseconds and inherit the imported modules (spawn costs ~1 s of imports each).
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    executor = cf.ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=context, initializer=_init_worker, initargs=(known,)
    )
    pending: dict[cf.Future, list[str]] = {}
    try:
        for task in tasks:
            pending[executor.submit(_process_in_worker, task, size, window)] = task
            if len(pending) >= workers * _IN_FLIGHT_PER_WORKER:
                break
        while pending:
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool as exc:
                    in_flight = ", ".join([*task, *(p for t in pending.values() for p in t)])
                    raise DataError(f"a decoding worker crashed while reading one of: {in_flight}") from exc
                following = next(tasks, None)
                if following is not None:  # refill before yielding: the consumer may take a while
                    pending[executor.submit(_process_in_worker, following, size, window)] = following
                yield from results
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# Set once in each worker process by its initializer (the set can be large: it is not sent with every task).
_worker_known: frozenset[str] = frozenset()


def _init_worker(known: frozenset[str]) -> None:
    global _worker_known
    _worker_known = known


def _process_in_worker(paths: list[str], size: tuple[int, int], window: Window) -> list[tuple]:
    return [_process_file(path, size, window, _worker_known) for path in paths]


def _process_file(path: str, size: tuple[int, int], window: Window, known: frozenset[str]):
    """Read once, hash those bytes, decode, preprocess, quantise; content in `known` is hashed, not decoded.

    Errors come back as data (the last tuple field) so that the caller applies the on_error policy.
    """
    stat = _stat(path)
    try:
        if stat is None:
            raise ImageReadError(path, "file not found" if not os.path.lexists(path) else "cannot stat file")
        if os.path.isdir(path):
            raise ImageReadError(path, "is a directory, not an image file")
        with open(path, "rb") as handle:
            data = handle.read()
        sha = content_key(data)
        if sha in known:
            return path, sha, (stat.st_size, stat.st_mtime_ns), None, None
        image, _meta = read_image_bytes(Path(path), data, window=window, target_size=size)
        row = quantize(preprocess(image, size)[0])
    except ImageReadError as exc:
        return path, None, None, None, exc.reason
    except OSError as exc:
        return path, None, None, None, f"cannot read file: {exc.strerror or exc}"
    return path, sha, (stat.st_size, stat.st_mtime_ns), row, None
