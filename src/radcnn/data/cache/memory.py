"""The in-memory store: decoded images of a dataset encrypted at rest, never written to disk.

The decode-once cache is a plaintext uint16 memory map on disk, which would defeat encryption at rest. With a key,
`decode_in_memory` runs the same decode pool (`radcnn.data.cache.pool`) and keeps the rows in this process only
(the forked workers inherit the key and send rows back through pipes); nothing plaintext is written anywhere.
Memory cost: H × W × 2 bytes per image (32 KiB at 128 × 128, 98 KiB at 224 × 224).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radcnn.data.cache.build import ON_ERROR, CachedImages
from radcnn.data.cache.pool import DecodeJob, decode_files
from radcnn.data.inputs import InputSpec
from radcnn.errors import ConfigError, ImageReadError

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

log = logging.getLogger(__name__)


def decode_in_memory(
    paths: Sequence[str | os.PathLike[str]],
    *,
    size: tuple[int, int],
    key: Secret | bytes | None,
    window: str | tuple[float, float] = "stored",
    workers: int = 2,
    on_error: str = "fail",
    progress: Callable[[int, int], None] | None = None,
) -> CachedImages:
    """Decode and preprocess `paths` (plain or `.rcenc`) into an in-memory uint16 store, row-aligned with `paths`.

    The result is a `CachedImages` like the one `build_cache` returns, minus the disk. Unreadable images follow
    `on_error` ("fail" raises ImageReadError, "skip" lists them in ``.skipped``); a failed authentication (wrong
    key, a modified or truncated file) always raises EncryptionError: skipping it would hide tampering.
    ``progress(done, total)`` is called after every file.
    """
    spec = InputSpec(size, window)
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be 'fail' or 'skip'; got {on_error!r}")
    paths = [Path(p) for p in paths]
    rows = np.zeros((len(paths), 1, *spec.size), dtype=np.uint16)
    failed: dict[int, str] = {}
    log.info("decoding %d images in memory only (no on-disk cache: it would hold plaintext pixels)", len(paths))
    results = decode_files([str(p) for p in paths], DecodeJob(spec=spec, key=key), workers=workers)
    for done, result in enumerate(results, start=1):
        if result.error is not None:
            if on_error == "fail":
                raise ImageReadError(paths[result.index], result.error)
            log.warning("%s: skipped: %s", paths[result.index], result.error)
            failed[result.index] = result.error
        else:
            rows[result.index, 0] = result.row
        if progress is not None:
            progress(done, len(paths))
    skipped = [(paths[i], failed[i]) for i in sorted(failed)]
    if skipped:
        log.warning("%d of %d images could not be decoded and were skipped", len(skipped), len(paths))
    return CachedImages(rows, paths, skipped, decoded=len(paths))
