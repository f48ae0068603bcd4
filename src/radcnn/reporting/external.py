"""`evaluate_external` (``radcnn evaluate RUN --external DATA``): score a run on an external dataset.

The dataset is read through the same data API as training (`radcnn.data.prepare.load_cohort`: any supported
layout, preprocessed with the run's image size and windowing), its labels are mapped by name onto the run's
(`radcnn.reporting.cohorts.map_labels`: a missing label is one error naming it), and the cohort is scored with
the run's threshold unchanged (`radcnn.reporting.cohorts.score_cohort`). The result joins the ``external``
section of ``metrics.json``, beside the internal test metrics, and the report shows both side by side.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from radcnn.errors import DataError
from radcnn.reporting.cohorts import DATASET, map_labels, score_cohort
from radcnn.reporting.evaluate_run import EvaluationResult, evaluate_run
from radcnn.reporting.operating import validation_reference
from radcnn.reporting.scoring import strict_json
from radcnn.runs import RunDir, metrics_name, predictions_name


def evaluate_external(
    run_dir: str | Path | RunDir,
    source: str | Path,
    *,
    layout: str = "auto",
    layout_options: dict | None = None,
    split: str = "",
    name: str = "",
    n_boot: int = 1000,
    seed: int = 0,
    key=None,
    progress=None,
) -> EvaluationResult:
    """Score the run on an external dataset and add it to the ``external`` section of ``metrics.json``.

    The internal test evaluation is run first when ``metrics.json`` is missing. ``split`` keeps one of the
    dataset's own partitions (e.g. ``"test"``); ``name`` defaults to the dataset's file or folder name.
    Returns the `EvaluationResult` of the updated ``metrics.json`` and the cohort's predictions file.
    """
    from radcnn.data.prepare import load_cohort

    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir, key=key)
    model, spec = run.load_model()
    config = run.config().data
    cohort_config = replace(
        config,
        source=str(source),
        layout=layout,
        layout_options=dict(layout_options or {}),
        label_columns=(),
        hold_out_site="",
        folds=0,
        fold=0,
        cache_dir="",
    )
    manifest, images, _skipped = load_cohort(cohort_config, progress=progress, key=key, split=split)
    mapping = map_labels(manifest.label_names, spec.label_names, source)
    _check_unseen(run, manifest.table["path"].astype(str), source)
    columns = [list(manifest.label_names).index(mapping[label]) for label in spec.label_names]
    labels = manifest.labels()[:, columns]
    name = name or Path(str(source).rstrip("/")).stem or "external"

    metrics = run.metrics("test")
    if metrics is None or not run.has(predictions_name("test")):
        metrics = evaluate_run(run, n_boot=n_boot, seed=seed).metrics
    internal = run.rebuild_data()
    references = validation_reference(run, internal, model, spec)
    entry, predictions = score_cohort(
        name=name,
        kind=DATASET,
        source=str(source),
        model=model,
        spec=spec,
        images=images,
        labels=labels,
        table=manifest.table.reset_index(drop=True),
        references=references,
        n_boot=n_boot,
        seed=seed,
    )
    entry["label_map"] = mapping
    entry["split"] = split or "all"
    metrics.setdefault("external", {})[name] = entry
    predictions_path = run.write_table(entry["predictions"], predictions)
    metrics_path = run.write_json(metrics_name("test"), strict_json(metrics))
    return EvaluationResult(metrics_path, predictions_path, metrics)


def _check_unseen(run: RunDir, paths, source) -> None:
    """Refuse images the model was trained or tuned on: an "external" result on them would be optimistic."""
    split = run.split_table()
    seen = set(split.loc[split["split"].astype(str).isin(["train", "val"]), "path"].astype(str))
    overlap = [p for p in paths if p in seen]
    if overlap:
        raise DataError(
            f"{source}: {len(overlap)} of its {len(paths)} images were used to train or tune the run "
            f"(e.g. {overlap[0]}); an external cohort must be images the model never saw"
        )
