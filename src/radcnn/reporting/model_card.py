"""The report's model card: what the model is, what it is for, what it was tested on, and where it fails.

Follows the sections of Mitchell et al. (2019), "Model Cards for Model Reporting" (model details, intended use,
data, metrics, limitations, ethical considerations). Most statements are computed from the run itself — the
numbers of images and patients, the width of the confidence intervals, subgroups too small to judge — so the
card cannot drift from the evidence. radcnn models are research artefacts: the intended-use section says so
without exception.
"""

from __future__ import annotations

import math

RESEARCH_ONLY = (
    "Research and education only. This model is not a medical device, has not been cleared or approved by any "
    "regulator, and must not be used to diagnose, treat or triage patients or to inform any clinical decision."
)
SYNTHETIC_CAVEAT = (
    "Synthetic data: this model was trained and tested on radcnn's procedural chest radiograph phantom. No real "
    "patient is behind any image. The phantom's anatomy, findings and scanners are simplified; performance on it "
    "says nothing about performance on real radiographs."
)
_WIDE_INTERVAL = 0.2  # a 95% interval wider than this makes the point estimate a rough guide only
_PREVALENCE_SHIFT = 0.10  # prevalence gaps between splits larger than this are worth a warning


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def _ci(entry: dict, name: str) -> str:
    ci = entry.get("ci95", {}).get(name)
    text = _fmt(entry["metrics"].get(name))
    if ci and ci.get("low") is not None and math.isfinite(ci["low"]):
        text += f" (95% CI {ci['low']:.3f}–{ci['high']:.3f})"
    return text


def build_model_card(
    *,
    spec,
    config: dict,
    data: dict,
    evaluation: dict,
    subgroups: dict[str, list[dict]],
    synthetic: bool,
    best: dict,
    privacy: dict | None = None,
) -> dict:
    """Model card sections as lists of sentences (``model_details`` is a list of [key, value] pairs). `privacy` is
    a DP-SGD run's privacy.json (radcnn.training.dp_fit)."""
    train = config.get("train", {})
    labels = list(evaluation["labels"])
    details = [
        ["architecture", spec.architecture],
        ["input", f"{spec.in_channels}×{spec.input_size[0]}×{spec.input_size[1]}, intensities in [0, 1]"],
        ["outputs", ", ".join(f"{name} (sigmoid probability)" for name in labels)],
        ["decision thresholds", ", ".join(f"{n} ≥ {e['threshold']:.4g}" for n, e in evaluation["labels"].items())],
        ["threshold chosen by", next(iter(evaluation["labels"].values()))["threshold_source"]],
        [
            "training",
            f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, lr {train.get('lr')}, "
            f"seed {train.get('seed')}, precision {train.get('precision')}",
        ],
        ["kept epoch", f"{best.get('epoch')} (best validation ROC AUC {_fmt(best.get('val_auc'))})"],
        ["initial weights", config.get("model", {}).get("weights") or "random initialisation"],
    ]
    if privacy:
        details.append(["differential privacy", privacy_statement(privacy)])
    intended = [
        RESEARCH_ONLY,
        "Intended users: researchers studying chest radiograph classification methods, evaluation and explainability.",
    ]
    out_of_scope = [
        "Any clinical use, including second reading, worklist prioritisation or screening.",
        "Populations, scanners, views or image processing unlike the training data (see Data).",
        "Labels other than " + ", ".join(labels) + "; the model says nothing about other findings.",
    ]
    if synthetic:
        out_of_scope.insert(0, "Real radiographs of any kind: the model has only seen synthetic images.")
    return {
        "model_details": details,
        "intended_use": intended,
        "out_of_scope": out_of_scope,
        "data": _data_statements(data, synthetic),
        "metrics": _metric_statements(evaluation),
        "limitations": _limitations(data, evaluation, subgroups, spec),
        "ethical_considerations": _ethics(synthetic) + _privacy_ethics(privacy),
        "caveats": [SYNTHETIC_CAVEAT] if synthetic else [],
    }


def _data_statements(data: dict, synthetic: bool) -> list[str]:
    out = [f"Source: {data['source']}" + (" (synthetic phantom)." if synthetic else ".")]
    for split in data["splits"]:
        balance = "; ".join(
            f"{b['label']}: {b['positives']} positive ({_pct(b['prevalence'])})" for b in split["balance"]
        )
        out.append(f"{split['split']}: {split['images']} images of {split['patients']} patients — {balance}.")
    if data["images_are_patients"]:
        out.append(
            "The source publishes no patient identifiers: every image is treated as its own patient, so images of "
            "one person may sit on both sides of a split and the intervals may be too narrow."
        )
    else:
        out.append(
            "Splits are made by patient, so no patient's images appear in more than one split. "
            f"Leakage check — {data['leakage_check']}."
        )
    if data["skipped"]:
        out.append(f"{len(data['skipped'])} file(s) could not be read and were left out (listed in the data section).")
    return out


def _pct(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _metric_statements(evaluation: dict) -> list[str]:
    out = [
        f"Evaluated on the held-out {evaluation['split']} split: {evaluation['n_images']} images of "
        f"{evaluation['n_patients']} patients; 95% confidence intervals by {evaluation['ci_method']}."
    ]
    for name, entry in evaluation["labels"].items():
        out.append(
            f"{name}: ROC AUC {_ci(entry, 'roc_auc')}; at threshold {entry['threshold']:.4g} sensitivity "
            f"{_ci(entry, 'sensitivity')}, specificity {_ci(entry, 'specificity')}, "
            f"accuracy {_ci(entry, 'accuracy')}."
        )
    for cohort, external in (evaluation.get("external") or {}).items():
        for name, entry in external["labels"].items():
            auc = entry.get("auc_note") or _ci(entry, "roc_auc")
            out.append(
                f"External validation, {cohort} ({external['n_images']} images, never trained or tuned on): "
                f"{name} ROC AUC {auc}; at the same threshold sensitivity {_ci(entry, 'sensitivity')}, "
                f"specificity {_ci(entry, 'specificity')}."
            )
    return out


def _limitations(data: dict, evaluation: dict, subgroups: dict[str, list[dict]], spec) -> list[str]:
    out = []
    for name, entry in evaluation["labels"].items():
        m = entry["metrics"]
        wide = [
            key
            for key in ("roc_auc", "sensitivity", "specificity")
            if (ci := entry.get("ci95", {}).get(key))
            and ci.get("low") is not None
            and math.isfinite(ci["low"])
            and ci["high"] - ci["low"] > _WIDE_INTERVAL
        ]
        if wide:
            out.append(
                f"{name}: the test set holds {m['n_positive']} positive and {m['n_negative']} negative images; "
                f"the 95% intervals of {', '.join(wide)} are wider than {_WIDE_INTERVAL:.1f}, so the point "
                "estimates are rough."
            )
        small = [
            f"{row['column']}={row['value']}"
            for row in subgroups.get(name, [])
            if row.get("note") and row["column"] != "all"
        ]
        if small:
            out.append(f"{name}: subgroups too small to judge ({', '.join(small)}); fairness across them is unknown.")
        ece = m.get("ece")
        if ece is not None and math.isfinite(ece) and ece > 0.05:
            out.append(
                f"{name}: probabilities are not well calibrated (ECE {ece:.3f}); do not read them as risks "
                "without recalibration."
            )
    shift = _prevalence_shift(data)
    if shift:
        out.append(shift)
    if not data.get("metadata_columns"):
        out.append("No sex, age, view or site was recorded: how performance differs between patient groups is unknown.")
    out.append(
        "The decision threshold was chosen on the validation split; if the prevalence or the image source "
        "changes, sensitivity and specificity change with it and the threshold should be re-chosen."
    )
    if min(spec.input_size) < 128:
        out.append(
            f"Input resolution is {spec.input_size[0]}×{spec.input_size[1]} pixels: small or subtle findings "
            "are likely invisible to the model."
        )
    sites = data.get("sites") or []
    where = f" (sites: {', '.join(sites)})" if sites else ""
    out.append(
        f"Internal validation only: training, validation and test images come from the same source{where}; "
        "performance at other hospitals, on other scanners or with other image processing is untested."
    )
    return out


def _prevalence_shift(data: dict) -> str:
    """A sentence when a label's prevalence differs between splits by more than 10 percentage points."""
    parts = []
    for j, label in enumerate(data.get("label_names", [])):
        values = {s["split"]: s["balance"][j]["prevalence"] for s in data["splits"]}
        finite = [v for v in values.values() if v is not None and math.isfinite(v)]
        if len(finite) >= 2 and max(finite) - min(finite) > _PREVALENCE_SHIFT:
            parts.append(f"{label} " + ", ".join(f"{split} {_pct(v)}" for split, v in values.items()))
    if not parts:
        return ""
    return (
        "Prevalence differs between the splits (" + "; ".join(parts) + "): precision, NPV and calibration depend "
        "on prevalence and will differ again in a population with another one."
    )


def _ethics(synthetic: bool) -> list[str]:
    out = [
        "Performance can differ between groups of patients (sex, age, view, site); check the subgroup tables "
        "before drawing conclusions, and treat groups absent from the test set as untested.",
        "Automation bias: readers tend to over-trust a confident model. Probabilities and heat maps are "
        "research outputs, not explanations of pathology.",
    ]
    if not synthetic:
        out.append(
            "The gallery embeds test images: share this report only where the images themselves may be shared, "
            "and only after de-identification (radcnn's DICOM de-identification follows PS3.15 Annex E)."
        )
    return out


def privacy_statement(privacy: dict) -> str:
    """One line: the (ε, δ) guarantee of a DP-SGD run and how it was obtained."""
    per_epoch = ", ".join(f"{e['epsilon']:.2f}" for e in privacy.get("epsilon_per_epoch", []))
    selected = privacy.get("selected_epoch_epsilon")
    kept = f"; the kept epoch {privacy['selected_epoch']} had spent ε = {selected:.2f}" if selected is not None else ""
    return (
        f"{privacy['mechanism']} {privacy.get('opacus_version', '')}: ε = {privacy['epsilon_spent']:.2f} spent at "
        f"δ = {privacy['delta']:.3g} ({privacy['delta_rule']}; target ε {privacy['target_epsilon']}) over "
        f"{privacy['epochs_run']} epoch(s), noise multiplier {privacy['noise_multiplier']:.3f}, per-sample clipping "
        f"norm {privacy['max_grad_norm']}, {'Poisson' if privacy['poisson_sampling'] else 'shuffled (not Poisson)'} "
        f"sampling at rate {privacy['sample_rate']:.4f}, {privacy['accountant'].upper()} accountant; ε after each "
        f"epoch: {per_epoch}{kept}"
    )


def _privacy_ethics(privacy: dict | None) -> list[str]:
    if not privacy:
        return []
    out = [
        "The weights are differentially private with respect to the training images (example-level (ε, δ) as "
        "stated in Model details): the guarantee covers one image, not one patient with several images, and not "
        "the validation images used to choose the epoch and the decision threshold."
    ]
    if privacy.get("model_changes"):
        out.append("Changed for DP-SGD: " + "; ".join(privacy["model_changes"]) + ".")
    if not privacy.get("secure_rng", False):
        out.append(
            "The noise came from PyTorch's pseudo-random generator (Opacus secure_mode off): adequate for research, "
            "not a cryptographic guarantee."
        )
    return out
