"""Frozen configuration dataclasses, one per pipeline stage, and YAML/TOML loading that rejects unknown keys.

A run's resolved configuration is saved beside it (`config.yaml`) so that evaluation and prediction rebuild the
exact data pipeline that training used.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radcnn.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they become model input."""

    source: str = ""  # labels CSV, MedMNIST .npz, or a dataset folder
    layout: str = "auto"  # a registered dataset layout (see `radcnn data layouts`); "auto" detects it
    layout_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"uncertainty": "ones"} for CheXpert
    label_columns: tuple[str, ...] = ()  # which of the dataset's labels to train on; empty = all the data names
    image_size: tuple[int, int] = (128, 128)
    window: str = "stored"  # DICOM VOI: "stored" window from the file, or "full" range
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # k-fold cross-validation by patient: with folds = K > 1, fold k (1..K) is the test split and val is carved
    # from the other folds at patient level (`radcnn train --folds K` trains all K)
    folds: int = 0
    fold: int = 0
    # site-held-out validation: every image of this site (the labels' "site" column) becomes the "external"
    # cohort, scored by `radcnn evaluate` and shown in the report; the other sites are split as usual
    hold_out_site: str = ""
    cache_dir: str = ""  # empty: <source folder>/.radcnn-cache
    workers: int = 2  # decoding processes for the cache
    on_error: str = "fail"  # "fail" | "skip" unreadable images
    # identical images in two splits: "fail", "drop" (keep the test copy, drop the others), or "auto" (drop for a
    # dataset's official split, fail for radcnn's own split); see radcnn.data.leakage
    on_leakage: str = "auto"
    # Encryption at rest: with a key, `.rcenc` files are decrypted in memory and the on-disk cache is bypassed.
    key_file: str = ""  # a radcnn key file (`radcnn keygen`)
    key_env: str = ""  # or the NAME of an environment variable holding a passphrase (never the passphrase itself)

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ConfigError("data.val_fraction and data.test_fraction must lie in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("data.val_fraction + data.test_fraction must leave images for training (< 1)")
        if self.on_error not in ("fail", "skip"):
            raise ConfigError(f"data.on_error must be 'fail' or 'skip', got {self.on_error!r}")
        if self.on_leakage not in ("auto", "fail", "drop"):
            raise ConfigError(f"data.on_leakage must be 'auto', 'fail' or 'drop', got {self.on_leakage!r}")
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise ConfigError(f"data.image_size must be two sides of at least 8 pixels, got {self.image_size}")
        if self.folds == 1 or self.folds < 0 or (self.folds and not 1 <= self.fold <= self.folds):
            raise ConfigError(
                f"data.folds must be 0 or at least 2 and data.fold in 1..folds; got {self.folds}, {self.fold}"
            )
        if self.hold_out_site and self.folds:
            raise ConfigError("data.hold_out_site and data.folds exclude each other: choose one protocol")
        if self.key_file and self.key_env:
            raise ConfigError("give data.key_file or data.key_env (a passphrase variable), not both")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "seed_cnn"
    weights: str = ""  # optional initial weights file (radcnn, torchvision-format or TorchXRayVision)
    weights_format: str = "auto"  # "auto" | "radcnn" | "torchvision" | "torchxrayvision"
    freeze_backbone: bool = False
    backbone_lr_scale: float = 1.0  # discriminative learning rate: backbone lr = lr × scale


@dataclass(frozen=True)
class DPConfig:
    """Differential privacy (DP-SGD with Opacus, see radcnn.training.dp): off while epsilon is 0."""

    epsilon: float = 0.0  # target ε spent over the planned epochs; 0 = no differential privacy
    delta: float | None = None  # target δ; None = 1/N of the training set
    max_grad_norm: float = 1.0  # per-sample gradient clipping norm C
    poisson_sampling: bool = True  # Poisson-sampled batches, as the privacy accounting assumes

    def __post_init__(self) -> None:
        if self.epsilon < 0:
            raise ConfigError(f"train.dp.epsilon must be ≥ 0 (0 = off, e.g. 8 for DP-SGD); got {self.epsilon}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ConfigError(
                f"train.dp.delta must lie strictly between 0 and 1 (or be null for 1/N); got {self.delta}"
            )
        if not self.max_grad_norm > 0:
            raise ConfigError(f"train.dp.max_grad_norm must be > 0; got {self.max_grad_norm}")

    @property
    def enabled(self) -> bool:
        return self.epsilon > 0


@dataclass(frozen=True)
class TrainConfig:
    """The seed's defaults: Adam, lr 1e-3, batch 32, 10 epochs."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 where the CPU has AMX/AVX-512-bf16), "32", "bf16"
    deterministic: bool = False
    threshold_method: str = "youden"  # how the decision threshold is chosen on the validation split
    threshold_target: float | None = None  # e.g. 0.95 with threshold_method "sensitivity"
    progress_bar: bool = True
    augment: str = "none"  # augmentation preset for the training split only: none | light | standard | strong | shift
    class_balance: str = "none"  # none | pos_weight (weighted loss) | sampler (balanced batches)
    lr_schedule: str = "none"  # none | cosine | plateau
    weight_decay: float = 0.0
    early_stopping_patience: int = 0  # epochs without val AUC improvement before stopping; 0 = off
    accumulate_grad_batches: int = 1
    devices: int = 1  # > 1: data-parallel processes (Lightning DDP; gloo on CPU)
    checkpoint_every_epoch: bool = True  # atomic checkpoints/last.ckpt after every epoch, for --resume
    task: str = "auto"  # "binary" (sigmoid per label, also multi-label) | "multiclass" (softmax) | "auto"
    weight_averaging: str = "none"  # "none" | "ema" (Lightning's EMAWeightAveraging of the weights, every step)
    ema_decay: float = 0.99  # EMA decay per optimiser step (0.99: the last ~100 steps dominate)
    model_selection: str = "best_val"  # "best_val" (epoch with the highest val AUC) | "last" (fixed schedule)
    tta: str = "none"  # test-time augmentation stored in the model: "none" | "flip" | "flip_shift"
    dp: DPConfig = field(default_factory=DPConfig)  # differential privacy (DP-SGD); off by default

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("train.epochs and train.batch_size must be ≥ 1 and train.lr > 0")
        if self.precision not in ("auto", "32", "bf16"):
            raise ConfigError(f"train.precision must be 'auto', '32' or 'bf16', got {self.precision!r}")
        choices = {
            "augment": ("none", "light", "standard", "strong", "shift"),
            "weight_averaging": ("none", "ema"),
            "model_selection": ("best_val", "last"),
            "tta": ("none", "flip", "flip_shift"),
            "class_balance": ("none", "pos_weight", "sampler"),
            "lr_schedule": ("none", "cosine", "plateau"),
            "threshold_method": ("youden", "sensitivity", "specificity", "f1", "fixed"),
            "task": ("auto", "binary", "multiclass"),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"train.{name} must be one of {', '.join(valid)}; got {getattr(self, name)!r}")
        needs_target = self.threshold_method in ("sensitivity", "specificity")
        if needs_target != (self.threshold_target is not None):
            raise ConfigError(
                "train.threshold_target is required with threshold_method sensitivity/specificity "
                f"(e.g. 0.95) and not allowed otherwise; got method {self.threshold_method!r}, "
                f"target {self.threshold_target!r}"
            )
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1), e.g. 0.99; got {self.ema_decay!r}")
        if self.accumulate_grad_batches < 1 or self.devices < 1 or self.early_stopping_patience < 0:
            raise ConfigError("train.accumulate_grad_batches and train.devices must be ≥ 1, patience ≥ 0")
        if isinstance(self.dp, dict):  # TrainConfig(dp={...}) from Python code
            object.__setattr__(self, "dp", DPConfig(**self.dp))


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _coerce(cls: type, values: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping: unknown keys and values of the wrong type are errors that name the
    key, the value and the expected type (``train.epochs: expected an integer, got 'two' (str)``)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {values!r} ({type(values).__name__})")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints[name]
        kwargs[name] = (
            _coerce(hint, value, f"{where}.{name}")
            if dataclasses.is_dataclass(hint)
            else _coerce_value(hint, value, f"{where}.{name}")
        )
    return cls(**kwargs)


def _coerce_value(hint: Any, value: Any, where: str) -> Any:
    """`value` as the annotated type (int, float, bool, str, tuples, dicts, Optional), or a ConfigError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce_value(inner[0], value, where) if len(inner) == 1 else value
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong_type(where, value, "true or false")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(where, value, "an integer" if hint is int else "a number")
        if hint is int and float(value) != int(value):
            raise _wrong_type(where, value, "an integer")
        return hint(value)
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _wrong_type(where, value, "a string")
        return str(value)
    if origin is tuple:
        if isinstance(value, str) and len(args) == 2 and args == (str, Ellipsis):  # "a, b" for a list of names
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if not isinstance(value, list | tuple):
            expected = "a list of two integers [height, width]" if args == (int, int) else "a list"
            raise _wrong_type(where, value, expected)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _wrong_type(where, value, f"a list of {len(args)} values")
        return tuple(_coerce_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong_type(where, value, "a mapping")
        return dict(value)
    return value


def _wrong_type(where: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {value!r} ({type(value).__name__})")


def config_from_dict(values: dict[str, Any], where: str = "config") -> RunConfig:
    return _coerce(RunConfig, values, where)


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML or TOML file into a RunConfig; unknown keys are errors that name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        values = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None
    return config_from_dict(values or {}, where=str(path))


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def replace(config: Any, **changes: Any) -> Any:
    """dataclasses.replace that ignores None values (handy for CLI options left unset)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
