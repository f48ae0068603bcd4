"""`load_input`: the one way from an image file (or its bytes) to a model's input.

Every consumer goes through it — the decode-once cache and the in-memory store of encrypted data (through their
worker pool), `radcnn predict`, the HTTP API and the DICOM node (through `Predictor`), explanations and the report's
gallery — so training and inference can never preprocess an image differently. The steps:

1. find the stored file (``x.dcm`` may be stored encrypted as ``x.dcm.rcenc``) and read its plaintext bytes,
   decrypting in memory with `key` when the content is encrypted (`radcnn.encryption.files`);
2. decode with `read_image_bytes` — DICOM modality LUT, VOI window and MONOCHROME1 handled, the intensity
   convention enforced, codecs decoding at reduced resolution when the target size allows it;
3. resize to the model's input size with `preprocess` and repeat the channel when the model wants more than one.

What the model needs is an `InputSpec` (size, window, channels). `InputSpec.of` builds one from a `ModelSpec`
(``input_size``, ``window``, ``in_channels``), a `DataConfig` (``image_size``, ``window``) or another InputSpec,
so callers pass whichever they hold without this module importing the layers above it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radcnn.data.readers.dispatch import ImageMeta, read_image_bytes
from radcnn.data.readers.windowing import Window, check_window
from radcnn.data.transforms import check_size, preprocess
from radcnn.encryption.files import plain_name, read_plaintext, stored_file
from radcnn.errors import ConfigError, ImageReadError

if TYPE_CHECKING:
    from radcnn.encryption.keys import Secret

Source = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class InputSpec:
    """What a model takes: (height, width), the DICOM VOI window choice and the number of channels."""

    size: tuple[int, int]
    window: Window = "stored"
    channels: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_size(self.size))
        object.__setattr__(self, "window", check_window(self.window))
        if not isinstance(self.channels, int) or self.channels < 1:
            raise ConfigError(f"input channels must be a positive integer, got {self.channels!r}")

    @classmethod
    def of(cls, spec: Any) -> InputSpec:
        """An InputSpec from a ModelSpec, a DataConfig or an InputSpec (duck-typed: no upward import)."""
        if isinstance(spec, InputSpec):
            return spec
        if hasattr(spec, "input_size"):  # ModelSpec
            return cls(tuple(spec.input_size), spec.window, int(getattr(spec, "in_channels", 1)))
        if hasattr(spec, "image_size"):  # DataConfig
            return cls(tuple(spec.image_size), spec.window)
        raise ConfigError(f"cannot derive a model input from {type(spec).__name__}; expected a ModelSpec or DataConfig")


@dataclass(frozen=True)
class ModelInput:
    """One image as the model sees it: (channels, height, width) float32 in [0, 1], with what the reader found."""

    source: str  # the file's plain name (without .rcenc), or the name given for bytes
    array: np.ndarray
    meta: ImageMeta
    warnings: tuple[str, ...] = ()
    image: np.ndarray | None = None  # the decoded (H, W) image before resizing, when asked for (display)


def read_source(source: Source, *, key: Secret | bytes | None = None, name: str | None = None, cache=None):
    """(plain name, plaintext bytes) of a file or of bytes already in memory. `cache` is a KEK cache shared by
    many files encrypted under one passphrase (see `radcnn.encryption.cipher.KekCache`)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return Path(name or "<upload>"), bytes(source)
    stored = stored_file(source)
    if stored is None:
        reason = "is a directory, not an image file" if Path(source).is_dir() else "file not found"
        raise ImageReadError(source, reason)
    try:
        return plain_name(stored), read_plaintext(stored, key, cache=cache)
    except PermissionError as exc:
        raise ImageReadError(source, "permission denied") from exc
    except OSError as exc:
        raise ImageReadError(source, f"cannot read file: {exc.strerror or exc}") from exc


def decode_input(path: Path, data: bytes, spec: Any, *, keep_image: bool = False) -> ModelInput:
    """Decode the plaintext `data` of `path` into the model input described by `spec` (steps 2 and 3)."""
    spec = InputSpec.of(spec)
    image, meta = read_image_bytes(path, data, window=spec.window, target_size=spec.size)
    array = preprocess(image, spec.size)
    if spec.channels > 1:
        array = np.repeat(array, spec.channels, axis=0)
    return ModelInput(str(path), array, meta, tuple(meta.warnings), image if keep_image else None)


def load_input(
    source: Source,
    spec: Any,
    *,
    key: Secret | bytes | None = None,
    name: str | None = None,
    cache=None,
    keep_image: bool = False,
) -> ModelInput:
    """A file path (plain or stored as ``.rcenc``) or the bytes of a file → the model's input (module docstring).

    `keep_image` also returns the decoded image before resizing (a viewer shows it). Unreadable or undecodable input
    raises `ImageReadError` naming the file; an encrypted file without a key raises `KeyNeededError`, and a wrong key
    or a tampered file `EncryptionError`."""
    path, data = read_source(source, key=key, name=name, cache=cache)
    return decode_input(path, data, spec, keep_image=keep_image)
