"""Findings of the phantom: lung nodules and pneumonia-like consolidation, placed only inside the lung fields.

A finding is specified once per patient in *lung-relative* coordinates (side, a = medial→lateral, b = apex→dome),
so on a follow-up with a different pose or depth of inspiration it moves with the lung: a nodule stays roughly in
place and may grow; a consolidation appears in one study and may persist, shrinking, into the next.

Rendering returns a density increment, an instance mask (0 = background, k = the k-th finding) clipped to the lung
mask, and one box per finding that is exactly the bounding box of that finding's mask pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radcnn.phantom.anatomy import MM, Anatomy, AnatomyRender, Pose, body_to_pixel, dome_y, lung_fields

NODULE = "nodule"
CONSOLIDATION = "consolidation"
LESION_LABELS = (NODULE, CONSOLIDATION)

# Density added per millimetre of nodule diameter at contrast 1. Physically a nodule replacing aerated lung adds
# about 0.003 per mm here (the lungs' 0.52 density deficit ~ 170 mm of lung). The phantom exaggerates this ten-fold
# on purpose: the seed CNN, trained on ~400 images, learns nothing from physically faint nodules (measured test
# ROC-AUC ~0.5), and the demo needs a task that is learnable but not trivial. `PhantomConfig.nodule_contrast`
# scales it per nodule (the default 0.4–1.0 gives 4–10× physical), so faint small nodules remain.
DENSITY_PER_MM = 0.03


@dataclass(frozen=True)
class NoduleSpec:
    side: int  # -1: patient's right lung (image left), +1: left lung (image right)
    a: float  # medial (0) → lateral (1)
    b: float  # apex (0) → diaphragm (1)
    diameter_mm: float  # at the first study
    contrast: float  # multiplies DENSITY_PER_MM; low values look like part-solid / ground-glass nodules
    lobulation: tuple[float, float, float, float]  # amplitude and phase of the 2nd and 3rd boundary harmonics
    growth: float  # diameter factor per follow-up
    drift: tuple[float, float]  # (a, b) change per follow-up


@dataclass(frozen=True)
class ConsolidationSpec:
    side: int
    a: float
    b: float
    radii: tuple[float, float]  # half extents in body units (x, y)
    density: float
    pattern_seed: int
    first_study: int
    last_study: int
    shrink: float  # size and density factor per study after the first


@dataclass(frozen=True)
class LesionBox:
    """One finding's box in pixels of the stored image, half-open: its mask pixels lie in mask[y0:y1, x0:x1]."""

    label: str
    x0: int
    y0: int
    x1: int
    y1: int
    size_mm: float = 0.0
    over_rib: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1}


def lung_point(anatomy: Anatomy, pose: Pose, side: int, a: float, b: float) -> tuple[float, float]:
    """Body coordinates of a lung-relative position for a study with `pose` (moves with inspiration)."""
    medial = anatomy.mediastinum_half_width
    lateral = anatomy.ribcage_half_width - 0.02
    x = side * (medial + a * (lateral - medial))
    bottom = float(dome_y(anatomy, pose, np.float32(x)))
    return x, anatomy.lung_apex_y + b * (bottom - anatomy.lung_apex_y)


def _inside_lungs(anatomy: Anatomy, poses: Sequence[Pose], side: int, a: float, b: float, radius: float) -> bool:
    """True if a disc of `radius` (body units) around the point lies in the lungs on every study."""
    angles = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    for pose in poses:
        x, y = lung_point(anatomy, pose, side, a, b)
        xs = np.concatenate([[x], x + radius * np.cos(angles)]).astype(np.float32)
        ys = np.concatenate([[y], y + radius * np.sin(angles)]).astype(np.float32)
        if not np.all(lung_fields(anatomy, pose, xs, ys) > 0.02):
            return False
    return True


def _final_radius(spec: NoduleSpec, n_studies: int) -> float:
    """Radius (body units) at the last study, when the nodule is largest."""
    return 0.5 * spec.diameter_mm * spec.growth ** (n_studies - 1) * MM


def _fits(
    spec: NoduleSpec,
    others: Sequence[NoduleSpec],
    avoid: ConsolidationSpec | None,
    anatomy: Anatomy,
    poses: Sequence[Pose],
) -> bool:
    """Inside the lungs (with a margin) on every study at its first and last position, and apart from the rest."""
    n = len(poses)
    radius = _final_radius(spec, n) + 0.015
    last = (spec.a + spec.drift[0] * (n - 1), spec.b + spec.drift[1] * (n - 1))
    if not all(_inside_lungs(anatomy, poses, spec.side, a, b, radius) for a, b in ((spec.a, spec.b), last)):
        return False
    x, y = lung_point(anatomy, poses[0], spec.side, spec.a, spec.b)
    for other in others:
        ox, oy = lung_point(anatomy, poses[0], other.side, other.a, other.b)
        if np.hypot(x - ox, y - oy) <= radius + _final_radius(other, n) + 0.04:
            return False
    if avoid is not None:
        cx, cy = lung_point(anatomy, poses[0], avoid.side, avoid.a, avoid.b)
        rx, ry = avoid.radii[0] * 1.6 + radius, avoid.radii[1] * 1.6 + radius
        if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0:
            return False
    return True


def sample_nodules(
    rng: np.random.Generator,
    anatomy: Anatomy,
    poses: Sequence[Pose],
    count: int,
    *,
    diameter_mm: tuple[float, float],
    contrast: tuple[float, float],
    growth: tuple[float, float],
    avoid: ConsolidationSpec | None = None,
) -> tuple[NoduleSpec, ...]:
    """Place `count` nodules (log-uniform diameters) inside the lungs, apart from each other and `avoid`.

    Candidates are drawn uniformly in lung-relative coordinates and rejected if they would leave the lung on any
    study; after 60 failed tries a nodule is left out (only a very small lung can cause that).
    """
    nodules: list[NoduleSpec] = []
    log_lo, log_hi = np.log(diameter_mm[0]), np.log(diameter_mm[1])
    for _ in range(count):
        for _attempt in range(60):
            candidate = NoduleSpec(
                side=int(rng.choice((-1, 1))),
                a=rng.uniform(0.05, 0.97),
                b=rng.uniform(0.05, 0.97),
                diameter_mm=float(np.exp(rng.uniform(log_lo, log_hi))),
                contrast=rng.uniform(*contrast),
                lobulation=(
                    rng.uniform(0, 0.12),
                    rng.uniform(0, 2 * np.pi),
                    rng.uniform(0, 0.08),
                    rng.uniform(0, 2 * np.pi),
                ),
                growth=rng.uniform(*growth),
                drift=(rng.normal(0.0, 0.006), rng.normal(0.0, 0.006)),
            )
            if _fits(candidate, nodules, avoid, anatomy, poses):
                nodules.append(candidate)
                break
    return tuple(nodules)


def sample_consolidation(
    rng: np.random.Generator,
    anatomy: Anatomy,
    poses: Sequence[Pose],
    *,
    density: tuple[float, float],
) -> ConsolidationSpec | None:
    """A pneumonia episode: starts at a random study, sometimes persists (shrinking) into the next one."""
    first = int(rng.integers(0, len(poses)))
    last = min(first + int(rng.random() < 0.5), len(poses) - 1)
    for _attempt in range(40):
        side, a, b = int(rng.choice((-1, 1))), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.85)
        radii = (rng.uniform(0.08, 0.18), rng.uniform(0.09, 0.2))
        if _inside_lungs(anatomy, poses[first : last + 1], side, a, b, 0.03):
            return ConsolidationSpec(
                side=side,
                a=a,
                b=b,
                radii=radii,
                density=rng.uniform(*density),
                pattern_seed=int(rng.integers(0, 2**31 - 1)),
                first_study=first,
                last_study=last,
                shrink=rng.uniform(0.5, 0.8),
            )
    return None


def _window(size: int, centre: tuple[float, float], half: float) -> tuple[slice, slice]:
    col, row = centre
    r0, r1 = max(int(np.floor(row - half)), 0), min(int(np.ceil(row + half)) + 1, size)
    c0, c1 = max(int(np.floor(col - half)), 0), min(int(np.ceil(col + half)) + 1, size)
    return slice(r0, r1), slice(c0, c1)


def _nodule(spec: NoduleSpec, study: int, anatomy: Anatomy, pose: Pose, render: AnatomyRender, out: np.ndarray):
    """Add one nodule's density to `out`; return (mask in the window, window, diameter at this study)."""
    size = out.shape[0]
    diameter = spec.diameter_mm * spec.growth**study
    a, b = spec.a + spec.drift[0] * study, spec.b + spec.drift[1] * study
    xc, yc = lung_point(anatomy, pose, spec.side, a, b)
    radius = 0.5 * diameter * MM
    half_px = radius * pose.scale * size / 2.0 * 1.2 + 2.0
    rows, cols = _window(size, body_to_pixel(pose, xc, yc, size), half_px)
    dx, dy = render.xb[rows, cols] - xc, render.yb[rows, cols] - yc
    theta = np.arctan2(dy, dx)
    l2, p2, l3, p3 = spec.lobulation
    boundary = radius * (1.0 + l2 * np.cos(2 * theta + p2) + l3 * np.cos(3 * theta + p3))
    t2 = (dx * dx + dy * dy) / (boundary * boundary)
    lung = render.lung_mask[rows, cols]
    mask = (t2 < 1.0) & lung
    centre = np.unravel_index(np.argmin(t2), t2.shape)  # tiny nodules at small sizes still own a pixel
    mask[centre] = lung[centre]
    profile = np.sqrt(np.clip(1.0 - t2, 0.0, 1.0)) * lung
    out[rows, cols] += DENSITY_PER_MM * diameter * spec.contrast * profile * mask.any()
    return mask, (rows, cols), diameter


def _consolidation(
    spec: ConsolidationSpec, study: int, anatomy: Anatomy, pose: Pose, render: AnatomyRender, out: np.ndarray
):
    size = out.shape[0]
    factor = spec.shrink ** (study - spec.first_study)
    rx, ry = spec.radii[0] * np.sqrt(factor), spec.radii[1] * np.sqrt(factor)
    xc, yc = lung_point(anatomy, pose, spec.side, spec.a, spec.b)
    half_px = 1.6 * max(rx, ry) * pose.scale * size / 2.0 + 2.0
    rows, cols = _window(size, body_to_pixel(pose, xc, yc, size), half_px)
    u, v = (render.xb[rows, cols] - xc) / rx, (render.yb[rows, cols] - yc) / ry
    # Confluent, ill-defined airspace opacity: a soft envelope modulated by a coarse lobular pattern and a fine
    # acinar mottle, both fixed for this patient so the follow-up shows the same consolidation resolving.
    rng = np.random.default_rng(spec.pattern_seed)
    coarse = ndimage.gaussian_filter(rng.standard_normal((24, 24)), 2.0, mode="wrap")
    fine = ndimage.gaussian_filter(rng.standard_normal((48, 48)), 0.8, mode="wrap")
    coords_coarse = [(v + 1.6) * 7.2, (u + 1.6) * 7.2]
    coords_fine = [(v + 1.6) * 14.4, (u + 1.6) * 14.4]
    noise = ndimage.map_coordinates((coarse / coarse.std()).astype(np.float32), coords_coarse, order=1, mode="wrap")
    mottle = ndimage.map_coordinates((fine / fine.std()).astype(np.float32), coords_fine, order=1, mode="wrap")
    envelope = np.exp(-((u * u + v * v) ** 1.2))
    opacity = np.clip((envelope * (0.9 + 0.3 * noise + 0.12 * mottle) - 0.25) / 0.5, 0.0, 1.0)
    lung = render.lung_mask[rows, cols]
    mask = (opacity > 0.2) & lung
    soft_lung = np.clip(render.lung_air[rows, cols] / 0.15, 0.0, 1.0)
    out[rows, cols] += spec.density * factor**0.5 * opacity * soft_lung * mask.any()
    return mask, (rows, cols), 2.0 * max(rx, ry) / MM


def render_lesions(
    nodules: Sequence[NoduleSpec],
    consolidation: ConsolidationSpec | None,
    study: int,
    anatomy: Anatomy,
    pose: Pose,
    render: AnatomyRender,
) -> tuple[np.ndarray, np.ndarray, tuple[LesionBox, ...]]:
    """Draw this study's findings: (density increment, uint8 instance mask, one box per finding)."""
    size = render.density.shape[0]
    delta = np.zeros((size, size), np.float32)
    instances = np.zeros((size, size), np.uint8)
    drawn: list[tuple[str, float]] = []
    parts = []
    if consolidation is not None and consolidation.first_study <= study <= consolidation.last_study:
        parts.append((CONSOLIDATION, _consolidation(consolidation, study, anatomy, pose, render, delta)))
    parts.extend((NODULE, _nodule(spec, study, anatomy, pose, render, delta)) for spec in nodules)
    for label, (mask, window, size_mm) in parts:
        if mask.any():  # a finding clipped away entirely (never expected) is neither drawn nor labelled
            drawn.append((label, size_mm))
            instances[window][mask] = len(drawn)
    boxes = []
    for index, found in enumerate(ndimage.find_objects(instances, max_label=len(drawn))):
        if found is None:  # overpainted completely by a later finding
            continue
        rows, cols = found
        label, size_mm = drawn[index]
        own = instances[found] == index + 1
        over_rib = bool(np.any(render.rib_map[found][own] > 0.3))
        boxes.append(LesionBox(label, cols.start, rows.start, cols.stop, rows.stop, round(size_mm, 1), over_rib))
    if len(boxes) != len(drawn):  # keep ids consecutive: k-th box ↔ mask value k
        remap = np.zeros(len(drawn) + 1, np.uint8)
        present = [i + 1 for i, f in enumerate(ndimage.find_objects(instances, max_label=len(drawn))) if f is not None]
        remap[present] = np.arange(1, len(present) + 1, dtype=np.uint8)
        instances = remap[instances]
    return delta, instances, tuple(boxes)
