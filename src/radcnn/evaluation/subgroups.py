"""Performance per subgroup (sex, age band, view, site): is the model equally good for everyone?

One row per value of each requested column of the metadata table (aligned row by row with the predictions),
plus an ``"all"`` row for reference. Columns absent from the table are skipped (and logged); ``age_band`` is
derived from an ``age`` column when the table has no ``age_band``. Missing values form their own subgroup,
``"(missing)"``, so no row is dropped silently. Subgroups with fewer than ``min_size`` labelled rows keep their
counts but get NaN metrics and a note, because metrics on a handful of cases are noise.

With ``groups`` (patient ids, or the name of a table column holding them) every subgroup also gets
patient-level bootstrap intervals for sensitivity, specificity and ROC AUC; the two proportions are widened to
their exact Clopper–Pearson interval where that reaches further, so a subgroup with 14/14 positives found reads
0.768–1.000, not the bootstrap's 1.000–1.000 (the ``interval`` column names the methods).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from radcnn.errors import DataError
from radcnn.evaluation.arrays import clean_binary
from radcnn.evaluation.bootstrap import bootstrap_samples, check_bootstrap_args, percentile_interval
from radcnn.evaluation.intervals import BOOTSTRAP, PROPORTIONS, UNION, proportion_interval
from radcnn.evaluation.metrics import binary_metrics

logger = logging.getLogger(__name__)

DEFAULT_COLUMNS = ("sex", "age_band", "view", "site")
DEFAULT_AGE_EDGES = (40, 60, 80)
MISSING = "(missing)"
ALL = "all"
_CI_METRICS = ("sensitivity", "specificity", "roc_auc")
_POINT_KEYS = ("n", "n_unknown", "n_positive", "n_negative", "prevalence", "sensitivity", "specificity", "roc_auc")


def age_band(ages, edges: Sequence[int] = DEFAULT_AGE_EDGES) -> pd.Series:
    """Bin ages (years) into ordered bands: with the default edges ``"<40"``, ``"40-59"``, ``"60-79"``, ``"80+"``.

    Bands are left-closed (59.9 is "40-59", 60 is "60-79"). Missing ages stay missing (NaN). Returns an
    ordered categorical Series (keeping the index of a Series input). Negative or infinite ages raise
    `DataError`.
    """
    edges = [int(edge) for edge in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or edges[0] <= 0:
        raise DataError(f"age band edges {edges}: expected increasing positive whole years, e.g. (40, 60, 80)")
    index = ages.index if isinstance(ages, pd.Series) else None
    values = pd.to_numeric(pd.Series(np.asarray(ages, dtype=object), index=index), errors="coerce")
    bad = values.notna() & ((values < 0) | ~np.isfinite(values.astype(np.float64)))
    if bad.any():
        where = values.index[bad.to_numpy()][0]
        raise DataError(f"age at row {where} = {float(values[where])!r}: expected a non-negative number of years")
    labels = [f"<{edges[0]}"]
    labels += [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:], strict=False)]
    labels.append(f"{edges[-1]}+")
    bins = [-np.inf, *edges, np.inf]
    return pd.cut(values, bins=bins, right=False, labels=labels, ordered=True).rename("age_band")


def _resolve_columns(table: pd.DataFrame, columns: Sequence[str]) -> dict[str, pd.Series]:
    found: dict[str, pd.Series] = {}
    for column in columns:
        if column in table.columns:
            found[column] = table[column]
        elif column == "age_band" and "age" in table.columns:
            found[column] = age_band(table["age"])
        else:
            logger.info("subgroup column %r is not in the table; skipped", column)
    return found


def _subgroups(values: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(label, boolean mask) per value in a stable order (category order, else sorted), missing last."""
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = [level for level in values.cat.categories if (values == level).any()]
    else:
        present = list(values[~missing].unique())
        try:
            levels = sorted(present)
        except TypeError:  # mixed types (e.g. 1 and "A"): order by their text
            levels = sorted(present, key=str)
    out = [(str(level), (values == level).to_numpy() & ~missing) for level in levels]
    if missing.any():
        out.append((MISSING, missing))
    return out


def _row(column, value, y, p, mask, threshold, group_ids, min_size, n_boot, alpha, seed) -> dict:
    point = binary_metrics(y[mask], p[mask], threshold)
    row = {"column": column, "value": value}
    row.update({key: point[key] for key in _POINT_KEYS})
    row["note"] = ""
    if point["n"] < min_size:
        for key in _CI_METRICS:
            row[key] = float("nan")
        row["note"] = f"fewer than {min_size} labelled rows: metrics not reported"
    if group_ids is None:
        return row
    data = clean_binary(y[mask], p[mask], group_ids[mask])
    row["n_groups"] = data.n_groups
    if row["note"]:
        row.update({f"{key}_{end}": float("nan") for key in _CI_METRICS for end in ("low", "high")})
        return row
    samples = bootstrap_samples(data, list(_CI_METRICS), n_boot=n_boot, seed=seed, threshold=threshold)
    for key in _CI_METRICS:
        interval = percentile_interval(samples[key], row[key], alpha=alpha, n_groups=data.n_groups, label=key)
        low, high = interval.low, interval.high
        if key in PROPORTIONS:
            # A small subgroup's 14/14 must not read "1.000–1.000": widen to the exact interval (never narrower).
            exact = proportion_interval(point, key, alpha=alpha)
            low = float(np.nanmin([low, exact["low"]])) if not np.isnan(exact["low"]) else low
            high = float(np.nanmax([high, exact["high"]])) if not np.isnan(exact["high"]) else high
        row[f"{key}_low"], row[f"{key}_high"] = low, high
    row["interval"] = f"sensitivity, specificity: {UNION}; ROC AUC: {BOOTSTRAP}"
    return row


def subgroup_metrics(
    y_true,
    y_prob,
    table: pd.DataFrame,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    threshold: float = 0.5,
    groups=None,
    min_size: int = 30,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """One row per subgroup value: n, n_unknown, n_positive, n_negative, prevalence, sensitivity,
    specificity, roc_auc, note (+ n_groups and ``<metric>_low``/``_high`` when ``groups`` is given).

    ``table`` is the metadata aligned row by row with ``y_true``/``y_prob``; ``groups`` is None, a column name
    of ``table`` (e.g. ``"patient_id"``) or an array of ids. Every subgroup is bootstrapped with the same seed.
    """
    clean_binary(y_true, y_prob)  # validates once, so errors name the row index of the full arrays
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_prob, dtype=np.float64)
    if len(table) != y.shape[0]:
        raise DataError(f"metadata table has {len(table)} rows but there are {y.shape[0]} predictions")
    table = table.reset_index(drop=True)
    group_ids = None
    if groups is not None:
        check_bootstrap_args(n_boot, alpha)
        if isinstance(groups, str):
            if groups not in table.columns:
                raise DataError(f"groups column {groups!r} is not in the table (columns: {list(table.columns)})")
            groups = table[groups]
        group_ids = np.asarray(groups, dtype=object)
        if group_ids.shape != y.shape:
            raise DataError(f"groups: expected {y.shape[0]} ids (one per row), got shape {group_ids.shape}")
    args = (y, p)
    rest = (threshold, group_ids, min_size, n_boot, alpha, seed)
    rows = [_row(ALL, ALL, *args, np.ones(y.shape[0], dtype=bool), *rest)]
    for column, values in _resolve_columns(table, columns).items():
        for value, mask in _subgroups(values.reset_index(drop=True)):
            rows.append(_row(column, value, *args, mask, *rest))
    return pd.DataFrame(rows)
