"""The decode-once cache: every image is read, windowed and resized once, in parallel, into a memory map.

Training then slices a uint16 memory map instead of decoding DICOM every epoch. `build_cache` hands the files
that are not cached yet to the decode pool (`radcnn.data.cache.pool`): each worker reads a file once, hashes those
bytes (the cache key is the file *content*) and decodes them through `radcnn.data.inputs` — the same path
`radcnn predict` takes — so the main process only copies finished rows into the store. The store's layout, keys
and crash-safety rules are in `radcnn.data.cache.store`.

An interrupted build (an exception, Ctrl-C, a progress callback that raises) checkpoints the rows finished so far
before the exception propagates; the next call with the same arguments decodes only the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from radcnn.data.cache.pool import DecodeJob, check_workers, decode_files
from radcnn.data.cache.store import STORAGE_SCALE, RowStore, digest, to_float
from radcnn.data.inputs import InputSpec
from radcnn.data.readers.windowing import Window
from radcnn.errors import ConfigError, ImageReadError

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
_CHECKPOINT_SECONDS = 2.0


class CachedImages:
    """Preprocessed images of `paths`, row-aligned with them, backed by a read-only uint16 memory map.

    ``cached[i]`` is float32 (1, H, W) in [0, 1]; ``array()`` is the raw (N, 1, H, W) uint16 memory map (divide by
    ``scale`` — or call `to_float` — to get [0, 1]). Rows of files that failed under ``on_error="skip"`` are zeros
    in ``array()``, False in ``valid``, listed in ``skipped``, and ``cached[i]`` raises ImageReadError for them.
    """

    scale = STORAGE_SCALE

    def __init__(
        self,
        images: np.ndarray,
        paths: list[Path],
        skipped: list[tuple[Path, str]],
        *,
        decoded: int,
    ):
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
    spec = InputSpec(size, window)
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}; got {on_error!r}")
    check_workers(workers)
    paths = [Path(p) for p in paths]
    absolute = [os.path.abspath(p) for p in paths]
    store = RowStore(Path(cache_dir), spec.size, spec.window)
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
            log.info("caching %d of %d images at %s into %s", len(todo), total, spec.size, store.directory)
            decoded = _run(store, todo, spec, workers, on_error, progress, keys, failures, total)
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


def _run(store, todo, spec, workers, on_error, progress, keys, failures, total) -> int:
    """Process `todo`, checkpointing the index every few seconds and on any exit; return the files decoded."""
    first_slot = store.reserve(len(todo))
    done, decoded = total - len(todo), 0
    last_commit = time.monotonic()
    # Content already stored under another path/mtime is hashed, not decoded.
    job = DecodeJob(spec=spec, known=frozenset(store.content))
    try:
        with contextlib.closing(decode_files(todo, job, workers=workers)) as results:
            for result in results:
                done += 1
                decoded += result.row is not None or result.error is not None
                _record(store, result, first_slot + result.index, on_error, keys, failures)
                if progress is not None:
                    progress(done, total)
                if time.monotonic() - last_commit > _CHECKPOINT_SECONDS:
                    store.commit()
                    last_commit = time.monotonic()
    finally:
        store.commit()
    return decoded


def _record(store, result, slot, on_error, keys, failures) -> None:
    path = result.path
    if result.error is not None:
        if on_error == "fail":
            raise ImageReadError(path, result.error)
        log.warning("%s: skipped: %s", path, result.error)
        failures[path] = result.error
        return
    if result.row is not None:
        store.add(result.content_key, result.row, slot)
    store.files[path] = [*result.stat, result.content_key]
    keys[path] = result.content_key
