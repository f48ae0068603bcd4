"""Reading a dataset that is encrypted at rest: files found as `<name>.rcenc`, decrypted and decoded in memory.

`radcnn encrypt DIR OUT` mirrors a tree with every file suffixed `.rcenc`, so a labels CSV that lists
``images/x.dcm`` is found as ``images/x.dcm.rcenc``; `stored_file` makes that lookup, `read_plaintext` returns a
file's plaintext bytes (decrypted only when the file starts with the radcnn encryption magic, so plain files in the
same tree keep working) and `decode_in_memory` decodes many such files in worker processes.

Why in memory: the decode-once cache is a plaintext uint16 memory map on disk, which would defeat encryption at
rest. With a key, decoded pixels live only in this process (and, while decoding, in its forked workers, which
inherit the key and send rows back through pipes); nothing plaintext is written anywhere. Memory cost: H × W × 2
bytes per image (32 KiB at 128 × 128, 98 KiB at 224 × 224).

`cryptography` (the [privacy] extra) is imported only when an encrypted file or a key is actually met.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radcnn.errors import ConfigError, DataError, EncryptionError, ImageReadError

if TYPE_CHECKING:
    from radcnn.config import DataConfig
    from radcnn.data.cache import CachedImages
    from radcnn.privacy.keys import Secret

log = logging.getLogger(__name__)

# The same values as radcnn.privacy.encryption.MAGIC / SUFFIX (a test checks it); repeated here so that checking a
# file costs no `cryptography` import.
ENCRYPTED_MAGIC = b"RCNNENC\x00"
ENCRYPTED_SUFFIX = ".rcenc"
KEY_HELP = "pass --key-file PATH or --passphrase-env VAR (data.key_file / data.key_env in a config file)"


class KeyNeededError(EncryptionError):
    """An encrypted file was met but no key was given."""


def key_needed(path: str | os.PathLike[str]) -> KeyNeededError:
    return KeyNeededError(f"{path} is encrypted; a key is needed to read it: {KEY_HELP}")


def stored_file(path: str | os.PathLike[str]) -> Path | None:
    """The file that holds `path` on disk: `path` itself, else `path.rcenc` beside it; None when neither exists."""
    path = Path(path)
    if path.is_file():
        return path
    sibling = path.with_name(path.name + ENCRYPTED_SUFFIX)
    return sibling if sibling.is_file() else None


def is_encrypted_file(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the radcnn encryption magic (content, not name, decides). An unreadable file
    counts as not encrypted, so that the plain reader reports why it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(ENCRYPTED_MAGIC)) == ENCRYPTED_MAGIC
    except OSError:
        return False


def read_plaintext(path: str | os.PathLike[str], key: Secret | bytes | None = None, *, cache=None) -> bytes:
    """The plaintext bytes of the existing file `path`: read as is, or decrypted in memory when encrypted.

    Bytes are returned only after every chunk authenticated; a wrong key or a modified file raises
    EncryptionError, an encrypted file without a key raises `KeyNeededError`. `cache` (a
    `radcnn.privacy.encryption.KekCache`) lets many files encrypted under one passphrase share one scrypt run.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(len(ENCRYPTED_MAGIC))
        if head != ENCRYPTED_MAGIC:
            return head + handle.read()
        if key is None:
            raise key_needed(path)
        from radcnn.privacy.encryption import iter_decrypt

        handle.seek(0)
        # iter_decrypt (not decrypt_to_bytes) because it takes the KEK cache; joining reads to the final chunk,
        # so truncation is detected before anything is returned.
        return b"".join(iter_decrypt(handle, key, where=str(path), cache=cache))


def data_key(config: DataConfig) -> Secret | None:
    """The secret a `DataConfig` names (key file, or a passphrase from an environment variable), else None."""
    if not config.key_file and not config.key_env:
        return None
    from radcnn.privacy.keys import KeyFileError, Secret

    if config.key_file:
        return Secret.from_key_file(config.key_file)
    value = os.environ.get(config.key_env)
    if not value:
        raise KeyFileError(f"environment variable {config.key_env} (data.key_env) is not set or empty")
    return Secret.from_passphrase(value)


def find_labels_csv(source: str | os.PathLike[str]) -> Path | None:
    """The labels CSV of `source` (plain or `.csv.rcenc`): the file itself, `source.rcenc`, or the one CSV in a
    folder; None when `source` holds no CSV. Several CSVs in one folder are ambiguous (ConfigError)."""
    source = Path(source)
    if source.is_dir():
        found = sorted({*source.glob("*.csv"), *source.glob(f"*.csv{ENCRYPTED_SUFFIX}")})
        found = [p for p in found if p.is_file()]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ConfigError(f"{source}: several labels files ({names}); pass the one to use as data.source")
        return found[0] if found else None
    stored = stored_file(source)
    if stored is None:
        return None
    name = stored.name.lower().removesuffix(ENCRYPTED_SUFFIX)
    return stored if name.endswith(".csv") else None


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
    from radcnn.data.cache import CachedImages
    from radcnn.data.preprocess import check_size
    from radcnn.data.windowing import check_window

    size, window = check_size(size), check_window(window)
    if on_error not in ("fail", "skip"):
        raise ConfigError(f"on_error must be 'fail' or 'skip'; got {on_error!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    paths = [Path(p) for p in paths]
    rows = np.zeros((len(paths), 1, *size), dtype=np.uint16)
    skipped: list[tuple[Path, str]] = []
    log.info("decoding %d images in memory only (no on-disk cache: it would hold plaintext pixels)", len(paths))
    for done, (i, row, error) in enumerate(_results(paths, size, window, key, workers), start=1):
        if error is not None:
            if on_error == "fail":
                raise ImageReadError(paths[i], error)
            log.warning("%s: skipped: %s", paths[i], error)
            skipped.append((paths[i], error))
        else:
            rows[i, 0] = row
        if progress is not None:
            progress(done, len(paths))
    if skipped:
        log.warning("%d of %d images could not be decoded and were skipped", len(skipped), len(paths))
    return CachedImages(rows, paths, skipped, decoded=len(paths))


def _results(paths: list[Path], size, window, key, workers: int):
    """Yield (index, uint16 row | None, error | None), in order."""
    tasks = [(i, str(p)) for i, p in enumerate(paths)]
    if workers == 1 or len(paths) < 2:
        cache = _kek_cache(key)
        yield from (_decode(task, size, window, key, cache) for task in tasks)
        return
    # fork, as in the cache: workers start at once and inherit the key in memory (it never crosses a disk).
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    executor = cf.ProcessPoolExecutor(
        max_workers=min(workers, len(paths)), mp_context=context, initializer=_init_worker, initargs=(key,)
    )
    try:
        chunk = max(1, min(8, len(tasks) // (workers * 8)))
        yield from executor.map(_decode_in_worker, tasks, [size] * len(tasks), [window] * len(tasks), chunksize=chunk)
    except BrokenProcessPool as exc:
        raise DataError(f"a decoding worker crashed while decoding {len(paths)} images") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _kek_cache(key):
    """One KEK cache per process: files encrypted in one `radcnn encrypt` run share a salt, so a passphrase is
    stretched by scrypt once rather than once per file."""
    if key is None:
        return None
    from radcnn.privacy.encryption import KekCache

    return KekCache()


# Set once in each worker process by its initializer.
_worker_key = None
_worker_cache = None


def _init_worker(key) -> None:
    global _worker_key, _worker_cache
    _worker_key, _worker_cache = key, _kek_cache(key)


def _decode_in_worker(task: tuple[int, str], size: tuple[int, int], window) -> tuple:
    return _decode(task, size, window, _worker_key, _worker_cache)


def _decode(task: tuple[int, str], size: tuple[int, int], window, key, cache) -> tuple:
    """(index, uint16 row | None, error | None) for one file: read (decrypting if needed), decode, preprocess,
    quantise. Read errors come back as data so that the caller applies on_error; EncryptionError propagates."""
    from radcnn.data.cache_store import quantize
    from radcnn.data.preprocess import preprocess
    from radcnn.data.reader import read_image_bytes

    index, path = task
    stored = stored_file(path)
    if stored is None:
        return index, None, "file not found (nor an encrypted .rcenc beside it)"
    try:
        data = read_plaintext(stored, key, cache=cache)
        image, _meta = read_image_bytes(Path(path), data, window=window, target_size=size)
        return index, quantize(preprocess(image, size)[0]), None
    except ImageReadError as exc:
        return index, None, exc.reason
    except OSError as exc:
        return index, None, f"cannot read file: {exc.strerror or exc}"
