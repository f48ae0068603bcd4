"""`RunDir`: the one owner of a training run's files — their names, plain or encrypted, reading and writing them,
creating a run atomically and resuming an interrupted one.

Layout of a run directory::

    run.json                 what this folder is (a radcnn run), the radcnn version, resumes
    config.yaml              the resolved configuration (a resumed run records its extended epochs here)
    split.csv                path, patient_id, metadata, labels, split — the patient-level split actually used
    data_summary.json        images/patients/positives per split, skipped files, the leakage checks and results
    best_model.safetensors   the selected weights + ModelSpec (decision thresholds chosen on val)
    best.json                epoch and validation AUC of the selected model
    transfer_report.json     which tensors were loaded from --weights (only with initial weights)
    privacy.json             DP-SGD: target (ε, δ), noise, clipping, model changes, ε spent per epoch (DP runs only)
    skipped.csv              inputs left out, with the reason (only when there were any)
    checkpoints/last.ckpt    Lightning checkpoint written atomically after every epoch (for --resume)
    logs/metrics.csv         per-epoch losses and AUC (and TensorBoard logs beside it)
    metrics[_SPLIT].json     `radcnn evaluate` results; predictions[_SPLIT].csv the per-image predictions;
                             metrics.json's "external" section holds the held-out site and `--external` cohorts,
                             whose per-image predictions are predictions_external[_NAME].csv
    calibration.json         the calibration map (Platt scaling) fitted on val by `radcnn evaluate`
    report.html, report.json `radcnn report`
    explain_eval.json        `radcnn explain-eval` scores

A federated run (`radcnn federated`) is the same directory plus::

    checkpoints/global_model.safetensors   the global model after the last completed round (for resume)
    federated/history.json   per round: server-side val metrics, accepted/rejected client updates, client metrics
    federated/partitions.json   the partition report: images, patients, class balance per client and split
    federated/baselines.json    optional: centralised and site-alone training on the same data, for comparison

Encryption at rest: a run trained on encrypted data stores every file that lists patients, labels or pixels
(split.csv, skipped.csv, predictions, the report) encrypted as ``<name>.rcenc`` with the data key; the aggregate
files (config, metrics, logs) stay readable. `RunDir` reads either variant transparently, given the key (or the
key the run's own config names), and writes with `write_protected`, so no command needs to know which it is.

Creation: a run is built in ``.<name>.partial`` beside its destination (`start_run`) and renamed into place only
when complete (`RunStaging.commit`), so a failed or killed command never leaves a half-written run under the final
name; an interrupted run is continued from that partial folder (`start_run(..., resume=True)`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from radcnn.config import RunConfig, dump_config, load_config
from radcnn.encryption.files import read_plaintext, secret_from, stored_file, write_protected
from radcnn.encryption.format import SUFFIX
from radcnn.errors import DataError, RunDirectoryError
from radcnn.io import write_json_atomic, write_text_atomic
from radcnn.outputs import replace_directory

if TYPE_CHECKING:
    from radcnn.data.prepare import PreparedData
    from radcnn.models.spec import ModelSpec

RUN_INFO = "run.json"
CONFIG = "config.yaml"
SPLIT = "split.csv"
DATA_SUMMARY = "data_summary.json"
BEST_MODEL = "best_model.safetensors"
BEST = "best.json"
TRANSFER_REPORT = "transfer_report.json"
PRIVACY = "privacy.json"
SKIPPED = "skipped.csv"
CHECKPOINT = "checkpoints/last.ckpt"
LOGS = "logs"
METRICS_LOG = "logs/metrics.csv"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
EXPLAIN_EVAL = "explain_eval.json"
CALIBRATION = "calibration.json"
GLOBAL_MODEL = "checkpoints/global_model.safetensors"
SERVER_OPTIMIZER = "checkpoints/server_optimizer.safetensors"  # FedAdam's moments, for an exact resume
FEDERATED_HISTORY = "federated/history.json"
FEDERATED_PARTITIONS = "federated/partitions.json"
FEDERATED_BASELINES = "federated/baselines.json"
RESUMABLE = (CHECKPOINT, GLOBAL_MODEL)  # either makes an interrupted run resumable


def metrics_name(split: str = "test") -> str:
    return "metrics.json" if split == "test" else f"metrics_{split}.json"


def predictions_name(split: str = "test") -> str:
    return "predictions.csv" if split == "test" else f"predictions_{split}.csv"


class RunDir:
    """A run directory (see the module docstring). `key` reads and writes a run trained on encrypted data; without
    it, the key named in the run's config (data.key_file / data.key_env) is used when the run needs one."""

    def __init__(self, path: str | os.PathLike[str], *, key: Any = None):
        self.path = Path(path)
        self._key = key
        self._config: RunConfig | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ----- opening and naming
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, key: Any = None) -> RunDir:
        """A finished run; RunDirectoryError says what is missing otherwise."""
        run = cls(path, key=key)
        if not run.path.is_dir():
            raise RunDirectoryError(f"{run.path}: no such run directory")
        for needed in (CONFIG, BEST_MODEL, SPLIT):
            if run.stored(needed) is None:
                partial = run.path.with_name(f".{run.path.name}.partial")
                hint = f"; an interrupted run is in {partial}: continue it with --resume" if partial.is_dir() else ""
                raise RunDirectoryError(f"{run.path}: incomplete run, {needed} is missing (did training finish?){hint}")
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def stored(self, name: str) -> Path | None:
        """The file holding `name`: itself, or its encrypted ``.rcenc`` variant; None when neither exists."""
        return stored_file(self.path / name)

    @property
    def encrypted(self) -> bool:
        """True for a run trained on encrypted data (its split is stored encrypted)."""
        return (self.path / (SPLIT + SUFFIX)).is_file() or bool(
            self.config().data.key_file or self.config().data.key_env
        )

    @property
    def key(self) -> Any:
        """The key given, else the one the run's config names; None for a plaintext run."""
        if self._key is None and self.stored(CONFIG) is not None:
            data = self.config().data
            self._key = secret_from(data.key_file, data.key_env)
        return self._key

    @property
    def write_key(self) -> Any:
        """The key outputs with patient data are encrypted with: the run's key when the run is encrypted."""
        return self.key if self.encrypted else None

    # ----- reading
    def config(self) -> RunConfig:
        if self._config is None:
            if not (self.path / CONFIG).is_file():
                raise RunDirectoryError(f"{self.path}: {CONFIG} is missing (is this a radcnn run directory?)")
            self._config = load_config(self.path / CONFIG)
        return self._config

    def read_bytes(self, name: str) -> bytes:
        found = self.stored(name)
        if found is None:
            raise RunDirectoryError(f"{self.path}: {name} is missing")
        return read_plaintext(found, self.key)

    def read_table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read_bytes(name)), dtype={"path": str, "patient_id": str})

    def read_json(self, name: str) -> dict:
        try:
            return json.loads(self.read_bytes(name))
        except json.JSONDecodeError as exc:
            raise RunDirectoryError(f"{self.path / name}: not valid JSON ({exc})") from None

    def has(self, name: str) -> bool:
        return self.stored(name) is not None

    def split_table(self) -> pd.DataFrame:
        table = self.read_table(SPLIT)
        if not {"path", "split"} <= set(table.columns):
            raise RunDirectoryError(f"{self.path / SPLIT}: expected columns path and split")
        return table

    def split_rows(self, split: str) -> pd.DataFrame:
        table = self.split_table()
        valid = sorted(table["split"].astype(str).unique())
        if split not in valid:
            raise DataError(f"{self.path}: no {split!r} split; the run has: {', '.join(valid)}")
        return table[table["split"] == split].reset_index(drop=True)

    def load_model(self):
        """(model in eval mode, ModelSpec) of the selected weights."""
        from radcnn.models.checkpoint import load_model

        found = self.stored(BEST_MODEL)
        if found is None:
            raise RunDirectoryError(f"{self.path}: no {BEST_MODEL} in this run directory (did training finish?)")
        return load_model(found, key=self.key)

    def spec(self) -> ModelSpec:
        from radcnn.models.checkpoint import read_spec

        return read_spec(self.path / BEST_MODEL, key=self.key)

    def metrics(self, split: str = "test") -> dict | None:
        return self.read_json(metrics_name(split)) if self.has(metrics_name(split)) else None

    def predictions(self, split: str = "test") -> pd.DataFrame | None:
        return self.read_table(predictions_name(split)) if self.has(predictions_name(split)) else None

    def data_summary(self) -> dict:
        return self.read_json(DATA_SUMMARY) if self.has(DATA_SUMMARY) else {}

    def best(self) -> dict:
        return self.read_json(BEST) if self.has(BEST) else {}

    def privacy(self) -> dict | None:
        """The DP-SGD record (privacy.json) of a differentially private run; None for other runs."""
        return self.read_json(PRIVACY) if self.has(PRIVACY) else None

    def config_dict(self) -> dict:
        return yaml.safe_load((self.path / CONFIG).read_text(encoding="utf-8")) or {}

    # ----- writing
    def write_json(self, name: str, data: Any) -> Path:
        """Aggregate results (metrics, summaries): plain JSON even for an encrypted run."""
        return write_json_atomic(self.path / name, data)

    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """A per-image table (patients, labels): encrypted when the run is."""
        return write_protected(self.path / name, table.to_csv(index=False).encode("utf-8"), self.write_key)

    def write_protected(self, name: str, data: bytes) -> Path:
        """Anything showing patient data (a report with thumbnails): encrypted when the run is."""
        return write_protected(self.path / name, data, self.write_key)

    def write_config(self, config: RunConfig) -> Path:
        self._config = config
        return write_text_atomic(self.path / CONFIG, dump_config(config))

    # ----- data
    def rebuild_data(self, *, progress=None) -> PreparedData:
        """The run's data prepared exactly as in training, checked row by row against the saved split."""
        from radcnn.data.prepare import prepare_data

        config = self.config()
        data = prepare_data(config.data, seed=config.train.seed, key=self.key, progress=progress)
        saved = self.split_table()
        now = data.manifest.table[["path", "split"]].reset_index(drop=True)
        if (
            len(saved) != len(now)
            or not (saved["path"].astype(str).to_numpy() == now["path"].astype(str).to_numpy()).all()
            or not (saved["split"].astype(str).to_numpy() == now["split"].astype(str).to_numpy()).all()
        ):
            raise DataError(
                f"{config.data.source}: the data no longer match the split saved in {self.path / SPLIT} "
                "(images were added, removed or relabelled since training); evaluate on the original data"
            )
        return data


def is_run(path: str | os.PathLike[str]) -> bool:
    """True when `path` holds a radcnn run (finished or not)."""
    path = Path(path)
    return (path / RUN_INFO).is_file() or ((path / CONFIG).is_file() and stored_file(path / BEST_MODEL) is not None)


def partial_dir(run_dir: str | os.PathLike[str]) -> Path:
    run_dir = Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}.partial")


@dataclass
class RunStaging:
    """A run being written: `run` works in the partial folder; `commit` moves it into place when complete."""

    target: Path
    run: RunDir
    resumed: bool

    def commit(self) -> RunDir:
        replace_directory(self.run.path, self.target)
        return RunDir(self.target, key=self.run._key)

    def discard_unless_resumable(self) -> bool:
        """After a failure: keep the partial run only if it has a checkpoint to resume from; True when kept."""
        if any((self.run.path / name).is_file() for name in RESUMABLE):
            return True
        shutil.rmtree(self.run.path, ignore_errors=True)
        return False


def check_destination(run_dir: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse to touch an existing run (or anything else) unless told to; check that a resume has something to do."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise RunDirectoryError("--resume and --overwrite exclude each other")
    partial = partial_dir(run_dir)
    if resume:
        if not any((partial / name).is_file() for name in RESUMABLE):
            done = " (that run is complete)" if is_run(run_dir) else ""
            raise RunDirectoryError(f"{run_dir}: nothing to resume — no interrupted run with a checkpoint{done}")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} exists and is not a folder; choose another --out")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirectoryError(f"{run_dir} already exists; pass --overwrite to replace it or choose another --out")
        if not is_run(run_dir):
            raise RunDirectoryError(
                f"{run_dir} is not a radcnn run directory (no {CONFIG} and model); --overwrite only replaces runs — "
                "choose another --out"
            )
    if partial.exists() and not overwrite:
        raise RunDirectoryError(
            f"{run_dir}: an interrupted run exists in {partial}; pass --resume to continue it or --overwrite to restart"
        )


def start_run(run_dir: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False, key: Any = None):
    """Check the destination and return a `RunStaging` whose `run` works in the partial folder."""
    run_dir = Path(run_dir)
    check_destination(run_dir, overwrite=overwrite, resume=resume)
    work = partial_dir(run_dir)
    if not resume:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    run = RunDir(work, key=key)
    _record_start(run, resumed=resume)
    return RunStaging(run_dir, run, resume)


def _record_start(run: RunDir, *, resumed: bool) -> None:
    info = run.read_json(RUN_INFO) if run.has(RUN_INFO) else {"kind": "radcnn training run", "resumed": 0}
    try:
        info["radcnn"] = metadata.version("radcnn")
    except metadata.PackageNotFoundError:
        info["radcnn"] = "unknown"
    if resumed:
        info["resumed"] = int(info.get("resumed", 0)) + 1
    run.write_json(RUN_INFO, info)
