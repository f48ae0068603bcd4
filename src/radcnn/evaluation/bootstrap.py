"""Bootstrap confidence intervals that resample **patients**, not images.

Images of one patient are correlated (same anatomy, same scanner, often the same label), so treating them as
independent makes intervals too narrow. Every function here takes ``groups`` — one id per row, normally the
patient id — and resamples whole groups with replacement; ``groups=None`` resamples rows (only right when
every patient contributes one image).

A resample is represented by a weight per row: how many times its group was drawn. All resamples of a chunk
are then scored at once by `weighted_binary_metrics` (matrix products and one sort), which is why 1000
resamples of a few hundred images take milliseconds rather than 1000 scikit-learn calls.

The interval is the percentile interval ``[q(alpha/2), q(1 - alpha/2)]`` of the resampled values (numpy's
default linear quantile). Resamples in which the metric is undefined (e.g. AUC when the resample holds one
class) are dropped and counted: ``n_valid`` of ``n_boot`` entered the interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from radcnn.errors import ConfigError, UnknownNameError
from radcnn.evaluation.arrays import BinaryInputs, clean_binary
from radcnn.evaluation.metrics import SCALAR_METRICS, weighted_binary_metrics

logger = logging.getLogger(__name__)

# Upper bound on the cells of one (resamples x rows) weight chunk: ~16 MB per float64 array.
_MAX_CELLS = 2_000_000

MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_boot: int  # resamples drawn
    n_valid: int  # resamples where the metric was defined (these make the interval)
    method: str = "percentile"
    alpha: float = 0.05
    n_groups: int = 0  # independent units resampled (patients, or rows when no groups were given)

    def to_dict(self) -> dict:
        return asdict(self)


def check_bootstrap_args(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ConfigError(f"n_boot = {n_boot!r}: expected a positive integer (1000 is usual)")
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha = {alpha!r}: expected a number in (0, 1), e.g. 0.05 for a 95% interval")


def resample_weights(
    group_codes: np.ndarray, n_groups: int, n_boot: int, seed: int | np.random.Generator = 0
) -> Iterator[np.ndarray]:
    """Yield (b, n) float64 chunks, ``n_boot`` rows in all: weight of row i = draws of its group.

    ``group_codes`` are integer codes 0..n_groups-1 (see `radcnn.evaluation.arrays.encode_groups`). The same
    seed gives the same resamples, whatever the metrics computed on them.
    """
    rng = np.random.default_rng(seed)
    n_rows = group_codes.shape[0]
    chunk = max(1, _MAX_CELLS // max(n_rows, n_groups, 1))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        if n_groups == 0:
            yield np.zeros((size, n_rows))
        else:
            draws = rng.integers(0, n_groups, size=(size, n_groups))
            # Offset each resample's draws into its own block so one bincount counts them all.
            flat = (draws + (np.arange(size) * n_groups)[:, None]).ravel()
            counts = np.bincount(flat, minlength=size * n_groups).reshape(size, n_groups)
            yield counts[:, group_codes].astype(np.float64)
        done += size


def _inputs(y_true, y_prob, groups) -> BinaryInputs:
    data = clean_binary(y_true, y_prob, groups)
    if data.group_codes is None:  # no groups: every row is its own unit
        return BinaryInputs(data.y, data.p, data.n_unknown, np.arange(data.n, dtype=np.int64), data.n)
    return data


def percentile_interval(
    samples: np.ndarray, estimate: float, *, alpha: float = 0.05, n_groups: int = 0, label: str = "metric"
) -> ConfidenceInterval:
    """Percentile interval from bootstrap values; NaN values (undefined resamples) are dropped and counted."""
    samples = np.asarray(samples, dtype=np.float64)
    valid = samples[~np.isnan(samples)]
    if valid.size < samples.size:
        logger.debug(
            "%s: %d of %d bootstrap resamples left the metric undefined and were dropped",
            label,
            samples.size - valid.size,
            samples.size,
        )
    if valid.size:
        low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    else:
        low = high = float("nan")
    return ConfidenceInterval(
        estimate=float(estimate),
        low=float(low),
        high=float(high),
        n_boot=int(samples.size),
        n_valid=int(valid.size),
        alpha=float(alpha),
        n_groups=int(n_groups),
    )


def bootstrap_samples(
    data: BinaryInputs,
    names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    threshold: float = 0.5,
    n_bins: int = 10,
) -> dict[str, np.ndarray]:
    """Resampled values (n_boot,) of each named metric over the *same* group resamples (NaN = undefined).

    ``data`` must carry group codes (`clean_binary` with groups, or one group per row).
    """
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for weights in resample_weights(data.group_codes, data.n_groups, n_boot, seed):
        values = weighted_binary_metrics(data.y, data.p, weights, threshold=threshold, n_bins=n_bins, names=names)
        for name in names:
            chunks[name].append(values[name])
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _call_metric(metric: MetricFn, y: np.ndarray, p: np.ndarray) -> float:
    """A user metric on one resample; an error on a one-class resample counts as "undefined"."""
    try:
        return float(metric(y, p))
    except ValueError:
        # Older scikit-learn raised ValueError for AUC with one class (newer returns NaN); a ValueError on a
        # resample that has both classes is a real bug and propagates.
        if np.unique(y).size < 2:
            return float("nan")
        raise


def bootstrap_ci(
    y_true,
    y_prob,
    groups,
    metric: MetricFn | str,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    threshold: float = 0.5,
    n_bins: int = 10,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of one metric, resampling ``groups`` (patients) with replacement.

    ``metric`` is a name from `radcnn.evaluation.metrics.SCALAR_METRICS` (vectorised; uses ``threshold`` and
    ``n_bins``) or a callable ``metric(y, p) -> float`` evaluated on each resample (slow path, one call per
    resample; a NaN result or a ValueError on a one-class resample marks it undefined). NaN labels are
    excluded first. The same seed gives the same resamples for every metric.
    """
    check_bootstrap_args(n_boot, alpha)
    data = _inputs(y_true, y_prob, groups)
    if isinstance(metric, str):
        if metric not in SCALAR_METRICS:
            raise UnknownNameError("metric", metric, list(SCALAR_METRICS))
        ones = np.ones((1, data.n))
        estimate = weighted_binary_metrics(data.y, data.p, ones, threshold=threshold, n_bins=n_bins, names=[metric])
        samples = bootstrap_samples(data, [metric], n_boot=n_boot, seed=seed, threshold=threshold, n_bins=n_bins)
        return percentile_interval(
            samples[metric], estimate[metric][0], alpha=alpha, n_groups=data.n_groups, label=metric
        )
    if not callable(metric):
        raise ConfigError(f"metric = {metric!r}: expected a metric name or a callable metric(y, p) -> float")
    estimate = _call_metric(metric, data.y, data.p) if data.n else float("nan")
    values = []
    rows = np.arange(data.n)
    for weights in resample_weights(data.group_codes, data.n_groups, n_boot, seed):
        for row in weights.astype(np.int64):
            index = np.repeat(rows, row)  # each row as many times as its patient was drawn
            values.append(_call_metric(metric, data.y[index], data.p[index]) if index.size else float("nan"))
    label = getattr(metric, "__name__", "metric")
    return percentile_interval(np.array(values), estimate, alpha=alpha, n_groups=data.n_groups, label=label)


def metrics_with_ci(
    y_true,
    y_prob,
    groups,
    threshold: float = 0.5,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    n_bins: int = 10,
) -> dict[str, dict]:
    """Every scalar metric of `binary_metrics` with its interval: ``{name: ConfidenceInterval.to_dict()}``.

    All metrics share the same patient resamples, so their intervals are mutually consistent.
    """
    check_bootstrap_args(n_boot, alpha)
    data = _inputs(y_true, y_prob, groups)
    names = list(SCALAR_METRICS)
    ones = np.ones((1, data.n))
    estimates = weighted_binary_metrics(data.y, data.p, ones, threshold=threshold, n_bins=n_bins, names=names)
    samples = bootstrap_samples(data, names, n_boot=n_boot, seed=seed, threshold=threshold, n_bins=n_bins)
    return {
        name: percentile_interval(
            samples[name], estimates[name][0], alpha=alpha, n_groups=data.n_groups, label=name
        ).to_dict()
        for name in names
    }
