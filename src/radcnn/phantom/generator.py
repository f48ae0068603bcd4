"""The synthetic chest radiograph phantom: patients, their follow-up studies, and rendered images with ground truth.

This is radcnn's embedded default dataset. It is *synthetic*: procedural anatomy (`phantom_anatomy`), findings
(`phantom_lesions`) and scanner sites (`phantom_sites`), no real patient behind any image. What it gives that
toy data does not: several studies per patient with persistent findings (so patient-level splitting matters),
site-dependent scanner characteristics (domain shift), subtle findings (some small, faint, or over a rib), and
exact ground truth (lesion boxes, an instance mask, the lung mask) for checking explanations.

Everything is a pure function of (seed, patient index): patient i is the same whatever the number of patients,
and each study has its own random stream, so images can be rendered in any order or in parallel.

    patient = sample_patient(seed=0, index=3)
    image = render_study(patient, 0, size=256)   # PhantomImage: image, lesion_mask, lung_mask, boxes
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from radcnn.errors import ConfigError
from radcnn.phantom.anatomy import Anatomy, Pose, render_anatomy, sample_anatomy, sample_pose
from radcnn.phantom.lesions import (
    CONSOLIDATION,
    LESION_LABELS,
    NODULE,
    ConsolidationSpec,
    LesionBox,
    NoduleSpec,
    render_lesions,
    sample_consolidation,
    sample_nodules,
)
from radcnn.phantom.sites import SiteProfile, acquire, resolve_sites

__all__ = [
    "LESION_LABELS",
    "PatientSpec",
    "PhantomConfig",
    "PhantomImage",
    "StudySpec",
    "render_study",
    "sample_patient",
]

# Common US names: realistic-looking fake identities for de-identification to remove (split on use).
_FAMILY_NAMES = (
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ GONZALEZ WILSON "
    "ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON WHITE HARRIS SANCHEZ CLARK RAMIREZ LEWIS "
    "ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT TORRES NGUYEN HILL FLORES GREEN ADAMS NELSON BAKER HALL"
)
_GIVEN_NAMES = {
    "M": "JAMES ROBERT JOHN MICHAEL DAVID WILLIAM RICHARD JOSEPH THOMAS CHARLES DANIEL MATTHEW ANTHONY MARK "
    "PAUL STEVEN ANDREW KENNETH JOSHUA KEVIN BRIAN GEORGE EDWARD RONALD",
    "F": "MARY PATRICIA JENNIFER LINDA ELIZABETH BARBARA SUSAN JESSICA SARAH KAREN LISA NANCY BETTY MARGARET "
    "SANDRA ASHLEY DOROTHY KIMBERLY EMILY DONNA MICHELLE CAROL AMANDA MELISSA",
}
_FIRST_DAY = dt.date(2016, 1, 4)


@dataclass(frozen=True)
class PhantomConfig:
    """Knobs of the generated population. The defaults are the demo's tuned difficulty (see the README)."""

    nodule_prevalence: float = 0.45  # fraction of patients with at least one nodule
    nodule_counts: tuple[float, float, float] = (0.2, 0.3, 0.5)  # P(1, 2, 3 nodules) for a positive patient
    nodule_diameter_mm: tuple[float, float] = (14.0, 40.0)  # log-uniform; above 30 mm a radiologist says mass
    nodule_contrast: tuple[float, float] = (0.4, 1.0)  # faint … dense, see phantom_lesions.DENSITY_PER_MM
    nodule_growth: tuple[float, float] = (1.0, 1.1)  # diameter factor per follow-up
    consolidation_rate: float = 0.25  # fraction of patients with a pneumonia episode
    consolidation_density: tuple[float, float] = (0.18, 0.4)
    studies_per_patient: tuple[float, ...] = (0.2, 0.3, 0.3, 0.2)  # P(1, 2, 3, 4 studies): mean 2.5
    exposure_sd: float = 0.25  # log-normal spread of the per-study dose

    def __post_init__(self) -> None:
        for name in ("nodule_prevalence", "consolidation_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"PhantomConfig.{name} must be in [0, 1]; got {getattr(self, name)}")
        for name in ("nodule_counts", "studies_per_patient"):
            weights = np.asarray(getattr(self, name), float)
            if weights.size == 0 or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
                raise ConfigError(f"PhantomConfig.{name} must be probabilities summing to 1; got {weights.tolist()}")
        if len(self.nodule_counts) != 3:
            raise ConfigError("PhantomConfig.nodule_counts gives P(1), P(2), P(3) nodules: exactly three values")
        for name in ("nodule_diameter_mm", "nodule_contrast", "nodule_growth", "consolidation_density"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"PhantomConfig.{name} must be a range 0 < low <= high; got {(lo, hi)}")


@dataclass(frozen=True)
class StudySpec:
    index: int  # 0 = first study
    date: dt.date
    time: dt.time
    age: int  # whole years at the study date
    accession: str
    pose: Pose
    exposure: float
    window_jitter: tuple[float, float]


@dataclass(frozen=True)
class PatientSpec:
    seed: int
    index: int
    patient_id: str
    name: str  # DICOM person name, FAMILY^GIVEN
    sex: str  # "M" or "F"
    birth_date: dt.date
    site: SiteProfile
    anatomy: Anatomy
    nodules: tuple[NoduleSpec, ...]
    consolidation: ConsolidationSpec | None
    studies: tuple[StudySpec, ...] = field(repr=False)


@dataclass(frozen=True)
class PhantomImage:
    """One rendered study with its ground truth, all in pixels of the stored image."""

    image: np.ndarray  # float32 (H, W) in [0, 1], bone bright (radcnn's intensity convention)
    lesion_mask: np.ndarray  # uint8 (H, W): 0 = background, k = boxes[k - 1]
    lung_mask: np.ndarray  # bool (H, W)
    boxes: tuple[LesionBox, ...]

    @property
    def labels(self) -> dict[str, int]:
        """{"nodule": 0/1, "consolidation": 0/1}, derived from what was actually drawn."""
        found = {box.label for box in self.boxes}
        return {label: int(label in found) for label in LESION_LABELS}


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _years_between(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def sample_patient(
    seed: int,
    index: int,
    *,
    sites: str | Sequence[str | SiteProfile] | None = None,
    config: PhantomConfig | None = None,
) -> PatientSpec:
    """Patient `index` of the population drawn with `seed`: demographics, site, anatomy, findings, studies."""
    if seed < 0 or index < 0:
        raise ConfigError(f"seed and patient index must be non-negative; got seed={seed}, index={index}")
    config = config or PhantomConfig()
    site_list = resolve_sites(sites)
    rng = _rng(seed, index)
    sex = "M" if rng.random() < 0.5 else "F"
    age = int(np.clip(round(rng.normal(58.0, 15.0)), 20, 90))
    name = f"{rng.choice(_FAMILY_NAMES.split())}^{rng.choice(_GIVEN_NAMES[sex].split())}"
    anatomy = sample_anatomy(rng, sex)

    n_studies = 1 + int(rng.choice(len(config.studies_per_patient), p=config.studies_per_patient))
    first = _FIRST_DAY + dt.timedelta(days=int(rng.integers(0, 7 * 365)))
    days = np.concatenate([[0], np.cumsum(rng.integers(30, 420, size=n_studies - 1))]).astype(int)
    birth = first - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    poses = [sample_pose(rng) for _ in range(n_studies)]
    studies = []
    for k in range(n_studies):
        date = first + dt.timedelta(days=int(days[k]))
        seconds = int(rng.integers(7 * 3600 + 1800, 19 * 3600 + 1800))
        studies.append(
            StudySpec(
                index=k,
                date=date,
                time=dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60),
                age=_years_between(birth, date),
                accession=f"ACC{index + 1:06d}{k + 1:02d}",
                pose=poses[k],
                exposure=float(np.exp(rng.normal(0.0, config.exposure_sd))),
                window_jitter=(float(rng.normal(0.0, 0.03)), float(rng.normal(0.0, 0.03))),
            )
        )

    consolidation = None
    if rng.random() < config.consolidation_rate:
        consolidation = sample_consolidation(rng, anatomy, poses, density=config.consolidation_density)
    nodules: tuple[NoduleSpec, ...] = ()
    if rng.random() < config.nodule_prevalence:
        count = 1 + int(rng.choice(3, p=config.nodule_counts))
        nodules = sample_nodules(
            rng,
            anatomy,
            poses,
            count,
            diameter_mm=config.nodule_diameter_mm,
            contrast=config.nodule_contrast,
            growth=config.nodule_growth,
            avoid=consolidation,
        )
    # The site comes from its own stream, so choosing other sites never changes a patient's anatomy or findings.
    site = site_list[int(_rng(seed, index, 1_000_000).integers(0, len(site_list)))]
    return PatientSpec(
        seed=seed,
        index=index,
        patient_id=f"PX{index + 1:06d}",
        name=name,
        sex=sex,
        birth_date=birth,
        site=site,
        anatomy=anatomy,
        nodules=nodules,
        consolidation=consolidation,
        studies=tuple(studies),
    )


def render_study(patient: PatientSpec, study: int, size: int = 256) -> PhantomImage:
    """Render study `study` of `patient` as a size×size display image with its ground truth."""
    if not 0 <= study < len(patient.studies):
        raise ConfigError(f"patient {patient.patient_id} has studies 0..{len(patient.studies) - 1}; got {study}")
    if size < 32:
        raise ConfigError(f"phantom images must be at least 32×32 pixels; got size={size}")
    spec = patient.studies[study]
    anatomy = render_anatomy(patient.anatomy, spec.pose, size)
    delta, instances, boxes = render_lesions(
        patient.nodules, patient.consolidation, study, patient.anatomy, spec.pose, anatomy
    )
    image = acquire(
        anatomy.density + delta,
        anatomy.body_mask,
        patient.site,
        exposure=spec.exposure,
        window_jitter=spec.window_jitter,
        rng=_rng(patient.seed, patient.index, study + 1),
    )
    return PhantomImage(image=image, lesion_mask=instances, lung_mask=anatomy.lung_mask, boxes=boxes)


def describe_labels(image: PhantomImage) -> str:
    """A short text such as "2 nodules, consolidation" (for logs and figure titles)."""
    nodules = sum(box.label == NODULE for box in image.boxes)
    parts = [f"{nodules} nodule{'s' * (nodules != 1)}"] if nodules else []
    if any(box.label == CONSOLIDATION for box in image.boxes):
        parts.append("consolidation")
    return ", ".join(parts) or "no finding"
