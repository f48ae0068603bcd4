"""Evaluation mathematics as pure functions: metrics, calibration, thresholds, intervals, comparisons.

* `metrics` — `binary_metrics`, `multilabel_metrics` (predicted positive means ``prob >= threshold``;
  undefined values are NaN; NaN labels are excluded and counted).
* `calibration` — `expected_calibration_error`, `calibration_curve_data` (reliability diagrams).
* `thresholds` — `choose_threshold` (Youden, target sensitivity/specificity, F1), on validation data only.
* `bootstrap` — `bootstrap_ci`, `metrics_with_ci`: percentile intervals resampling patients, not images.
* `compare` — `delong_test`, `paired_bootstrap_auc_difference` for two models on the same cases.
* `subgroups` — `subgroup_metrics`, `age_band`: performance per sex, age band, view and site.
* `arrays` — the shared input checks (`clean_binary`).
"""
