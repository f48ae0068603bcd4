"""radcnn's exception tree. Every error a user can cause is one of these, with a message a person can act on.

RadcnnError
├── ConfigError            bad or unknown configuration keys/values
├── UnknownNameError       a name not in a registry (lists the valid names)
├── MissingExtraError      an optional dependency group is not installed (names the pip command)
├── DataError              anything wrong with input data
│   ├── ImageReadError     one image file could not be read (path + reason)
│   ├── ManifestError      a labels/manifest table is wrong (path, row, column)
│   └── LeakageError       a split puts a patient or an identical image on both sides
├── ModelError             weights that do not fit, checkpoints that cannot be loaded
├── TrainingError          training diverged (NaN loss) or cannot continue
├── RunDirectoryError      a run directory exists / is missing / is incomplete
├── FederatedError         a federated run cannot go on (no usable client update, TLS, ports, peers)
├── Interrupted            Ctrl-C: says what was saved and how to continue (the CLI exits with 130)
└── PrivacyError           de-identification and encryption failures
    ├── DeidentificationError
    └── EncryptionError
"""

from __future__ import annotations

from pathlib import Path


class RadcnnError(Exception):
    """Base class of every error radcnn raises on purpose. The CLI prints its message without a traceback."""


class ConfigError(RadcnnError):
    """A configuration value or key is wrong."""


class UnknownNameError(RadcnnError, KeyError):
    """A name is not registered; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid names: {', '.join(self.valid) or '(none registered)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


class MissingExtraError(RadcnnError, ImportError):
    """An optional dependency is missing."""

    def __init__(self, module: str, extra: str):
        self.module, self.extra = module, extra
        super().__init__(f"{module!r} is not installed; run: pip install 'radcnn[{extra}]'")


class DataError(RadcnnError):
    """Input data is missing or malformed."""


class ImageReadError(DataError):
    """One image file could not be read."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


class ManifestError(DataError):
    """A labels or manifest table is wrong; names the file, the row (1-based, header = row 1) and the column."""

    def __init__(self, path: str | Path | None, reason: str, *, row: int | None = None, column: str | None = None):
        self.path, self.reason, self.row, self.column = path, reason, row, column
        where = str(path) if path is not None else "manifest"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")


class LeakageError(DataError):
    """A split puts the same patient or an identical image into two partitions."""


class ModelError(RadcnnError):
    """A model cannot be built, or weights do not fit it."""


class TrainingError(RadcnnError):
    """Training cannot continue (e.g. the loss became NaN)."""


class RunDirectoryError(RadcnnError):
    """A run directory is in a state that would make the command unsafe."""


class FederatedError(RadcnnError):
    """A federated run cannot go on: no client update could be used, a certificate does not verify, a port is taken."""


class Interrupted(RadcnnError):
    """The user pressed Ctrl-C (SIGINT); the message says what was saved and how to continue."""


class PrivacyError(RadcnnError):
    """De-identification or encryption failed."""


class DeidentificationError(PrivacyError):
    """A file could not be de-identified safely."""


class EncryptionError(PrivacyError):
    """Encryption, decryption or authentication failed."""
