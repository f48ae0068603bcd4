"""Procedural anatomy of a frontal (PA) chest radiograph as a density map (higher = more attenuating = brighter).

Coordinates: an image spans x, y ∈ [-1, 1] (x to the right of the viewer, y down). A PA film is displayed as if
facing the patient, so the patient's right lung is on the image *left* (x < 0) and the heart bulges to the image
right. Anatomy is drawn in *body* coordinates; a per-study `Pose` (shift, rotation, scale) maps body to image
coordinates, so follow-ups of one patient show the same anatomy slightly repositioned.

Every structure is an analytic profile (the path length of X-rays through an ellipse is ∝ sqrt(1 - r²)), so the
whole image is a few dozen vectorised numpy expressions: ~10 ms for 256×256 on one core.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

FIELD_OF_VIEW_MM = 430.0  # a 43 cm detector spans the image width (2 normalised units)
MM = 2.0 / FIELD_OF_VIEW_MM  # one millimetre in normalised units


@dataclass(frozen=True)
class Anatomy:
    """Per-patient anatomy, in normalised body coordinates."""

    sex: str
    body_half_width: float  # trunk soft-tissue outline
    habitus: float  # soft-tissue thickness factor (slim < 1 < heavy)
    ribcage_half_width: float
    mediastinum_half_width: float
    lung_apex_y: float
    dome_y: float  # top of the right hemidiaphragm (image left)
    dome_left_drop: float  # the left dome sits lower by this much
    cardiothoracic_ratio: float
    heart_shift: float
    heart_tilt: float  # how much the left heart border narrows upwards (0 = round)
    rib_top_y: float
    rib_spacing: float
    rib_curvature: float
    breast: float  # breast-shadow density (0 for men)
    rib_jitter: tuple[float, ...]  # per-rib offset within its period, so ribs are not perfectly regular
    texture_seed: int  # vessel/parenchyma pattern, identical on every follow-up


@dataclass(frozen=True)
class Pose:
    """Per-study positioning: image = shift + scale * R(rotation) · body; inspiration lowers the domes."""

    shift_x: float = 0.0
    shift_y: float = 0.0
    rotation: float = 0.0
    scale: float = 1.0
    inspiration: float = 0.0


@dataclass(frozen=True)
class AnatomyRender:
    density: np.ndarray  # float32 (H, W)
    lung_air: np.ndarray  # float32 (H, W), soft lung-air profile, > 0 exactly on lung_mask
    lung_mask: np.ndarray  # bool (H, W)
    body_mask: np.ndarray  # bool (H, W)
    rib_map: np.ndarray  # float32 (H, W), rib bone profile (> 0 where a rib projects)
    xb: np.ndarray  # body x coordinate of every pixel
    yb: np.ndarray  # body y coordinate of every pixel


def sample_anatomy(rng: np.random.Generator, sex: str) -> Anatomy:
    """Draw one patient's anatomy (men slightly larger; women with breast shadows)."""
    male = sex == "M"
    body = rng.uniform(0.84, 0.93) if male else rng.uniform(0.80, 0.89)
    return Anatomy(
        sex=sex,
        body_half_width=body,
        habitus=float(np.clip(rng.normal(1.0, 0.12), 0.75, 1.35)),
        ribcage_half_width=body - rng.uniform(0.05, 0.09),
        mediastinum_half_width=rng.uniform(0.09, 0.12),
        lung_apex_y=rng.uniform(-0.80, -0.72),
        dome_y=rng.uniform(0.34, 0.48),
        dome_left_drop=rng.uniform(0.01, 0.07),
        cardiothoracic_ratio=float(np.clip(rng.normal(0.46, 0.04), 0.38, 0.58)),
        heart_shift=rng.uniform(-0.03, 0.04),
        heart_tilt=rng.uniform(0.15, 0.35),
        rib_top_y=rng.uniform(-0.86, -0.80),
        rib_spacing=rng.uniform(0.115, 0.135),
        rib_curvature=rng.uniform(0.55, 0.8),
        breast=0.0 if male else rng.uniform(0.04, 0.12),
        rib_jitter=tuple(float(v) for v in rng.uniform(-0.07, 0.07, size=12)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def sample_pose(rng: np.random.Generator) -> Pose:
    """Draw one study's positioning and depth of inspiration."""
    return Pose(
        shift_x=rng.normal(0.0, 0.02),
        shift_y=rng.normal(0.0, 0.02),
        rotation=rng.normal(0.0, np.deg2rad(1.5)),
        scale=rng.uniform(0.97, 1.03),
        inspiration=rng.normal(0.0, 0.025),
    )


@functools.lru_cache(maxsize=8)
def _image_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    x, y = np.meshgrid(centres, centres)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def body_coordinates(size: int, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Body coordinates of every pixel centre of a size×size image taken with `pose`."""
    x, y = _image_grid(size)
    cos, sin = np.float32(np.cos(pose.rotation)), np.float32(np.sin(pose.rotation))
    dx, dy = (x - np.float32(pose.shift_x)), (y - np.float32(pose.shift_y))
    inv = np.float32(1.0 / pose.scale)
    return (cos * dx + sin * dy) * inv, (-sin * dx + cos * dy) * inv


def body_to_pixel(pose: Pose, xb: float, yb: float, size: int) -> tuple[float, float]:
    """Pixel (column, row) of a body point; pixel centres sit at integer + 0.5 in normalised units."""
    cos, sin = np.cos(pose.rotation), np.sin(pose.rotation)
    x = pose.shift_x + pose.scale * (cos * xb - sin * yb)
    y = pose.shift_y + pose.scale * (sin * xb + cos * yb)
    return (x + 1.0) * size / 2.0 - 0.5, (y + 1.0) * size / 2.0 - 0.5


def _smooth(t: np.ndarray) -> np.ndarray:
    """Smoothstep of t clipped to [0, 1]; zero for t <= 0, so soft profiles vanish exactly outside a shape."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ellipse_path(q: np.ndarray) -> np.ndarray:
    """X-ray path length through an ellipsoid at normalised squared radius q."""
    return np.sqrt(np.clip(1.0 - q, 0.0, 1.0))


def dome_y(anatomy: Anatomy, pose: Pose, xb: np.ndarray | float) -> np.ndarray:
    """Height of the diaphragm below each x (right dome on the image left, the left dome a little lower)."""
    peak = 0.45 * anatomy.ribcage_half_width
    # float32 constants keep the whole map in float32 (a float64 scalar would promote every array after it).
    right, left = np.float32(anatomy.dome_y), np.float32(anatomy.dome_y + anatomy.dome_left_drop)
    top = np.where(np.asarray(xb) < 0, right, left)
    return top + pose.inspiration + 0.9 * (np.abs(xb) - peak) ** 2


def _heart_q(anatomy: Anatomy, pose: Pose, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Normalised squared radius of the cardiac silhouette (< 1 inside).

    An ellipse with a short right half (right atrium, just beyond the spine) and a long left half (left ventricle),
    whose left half narrows upwards so the left heart border runs obliquely down to an apex on the left dome.
    """
    width = anatomy.cardiothoracic_ratio * 2.0 * anatomy.ribcage_half_width
    cx = anatomy.heart_shift
    cy = anatomy.dome_y + pose.inspiration - 0.06  # widest near its base, which rests on the diaphragm
    ry = cy + 0.1
    u, t = xb - cx, (yb - cy) / ry
    left = 0.72 * width * (1.0 + anatomy.heart_tilt * np.minimum(t, 0.0))
    rx = np.where(u > 0, left, np.float32(0.28 * width))
    return (u / rx) ** 2 + t * t


def _mediastinum_half_width(anatomy: Anatomy, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    base = anatomy.mediastinum_half_width
    knob = 0.05 * np.exp(-(((yb + 0.3) / 0.08) ** 2)) * (xb > 0)  # aortic knob on the patient's left
    hilar = 0.05 * np.exp(-(((yb + 0.05) / 0.15) ** 2))  # great vessels widen the mediastinum above the heart
    return base + knob + hilar + 0.03 * np.clip(-yb - 0.6, 0.0, None)


def lung_fields(anatomy: Anatomy, pose: Pose, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Soft lung-air profile at body points (0 outside the lungs, up to 1 in their thickest part)."""
    ax = np.abs(xb)
    lateral = anatomy.ribcage_half_width - 0.02
    medial = anatomy.mediastinum_half_width
    cx, rx = (lateral + medial) / 2.0, (lateral - medial) / 2.0 + 0.02
    dome = dome_y(anatomy, pose, xb)
    cy = anatomy.dome_y + pose.inspiration + 0.08
    ry = cy - anatomy.lung_apex_y
    egg = 1.0 + 0.22 * np.clip((yb - cy) / ry, -1.0, 0.0)  # narrower apices, widest near the bases
    # A squarish superellipse (u² (0.6 + 0.4 u²) ≈ |u|^2.4, without a costly fractional power).
    u2, v2 = ((ax - cx) / (rx * egg)) ** 2, ((yb - cy) / ry) ** 2
    q = u2 * (0.6 + 0.4 * u2) + v2
    air = np.sqrt(np.clip(1.0 - q, 0.0, 1.0))
    air = air * _smooth((dome - yb) / 0.03)  # diaphragm
    air = air * _smooth((ax - _mediastinum_half_width(anatomy, xb, yb)) / 0.02)  # mediastinum
    air = air * _smooth((_heart_q(anatomy, pose, xb, yb) - 1.0) / 0.12)  # heart silhouette
    return air


def _ribs(anatomy: Anatomy, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Posterior ribs (arching from the spine, curving down laterally) plus fainter anterior ribs."""
    u = np.abs(xb) - 0.05  # distance from the costovertebral junction
    lateral = anatomy.ribcage_half_width - 0.05
    curve = anatomy.rib_curvature * u * u - 0.32 * u
    # Rib n's centre line is y = top + spacing*(n + 0.04 n²) + (1 + 0.08 n)·curve(u); solve for a fractional n.
    n = (yb - anatomy.rib_top_y - curve) / anatomy.rib_spacing
    n = (yb - anatomy.rib_top_y - curve * (1.0 + 0.08 * np.clip(n, 0, 12))) / anatomy.rib_spacing
    n = (np.sqrt(1.0 + 0.16 * np.clip(n, 0.0, None)) - 1.0) / 0.08
    index = np.floor(n)
    phase = n - index
    width = 0.42
    jitter = np.asarray(anatomy.rib_jitter, dtype=np.float32)[np.clip(index, 0, 11).astype(np.intp)]
    r = np.abs(phase - width / 2.0 - jitter) / (width / 2.0)
    tube = _ellipse_path(r * r) - 0.55 * _ellipse_path((r / 0.72) ** 2)  # cortex brighter than marrow
    valid = (n >= 0.0) & (n < 11.0)
    taper = _smooth(u / 0.06) * _smooth((lateral + 0.04 - u) / 0.08)
    posterior = np.where(valid, tube, 0.0) * taper

    # Anterior ribs run down and medially from the lateral chest wall and fade at the costal cartilage.
    na = (yb + 0.52 - 0.32 * (lateral - u)) / (1.25 * anatomy.rib_spacing)
    phase_a = na - np.floor(na)
    ra = np.abs(phase_a - 0.17) / 0.17
    anterior = np.where((na >= 0) & (na < 5), _ellipse_path(ra * ra), 0.0)
    anterior = anterior * _smooth((u - 0.22) / 0.15) * _smooth((lateral - u) / 0.05)
    return (posterior + 0.35 * anterior).astype(np.float32)


def _clavicles(xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    u = np.abs(xb) - 0.05
    length = 0.58
    centre = -0.70 - 0.10 * (u / length) + 0.02 * np.sin(2.0 * np.pi * u / length)
    r = (yb - centre) / 0.028
    return _ellipse_path(r * r) * _smooth(u / 0.04) * _smooth((length - u) / 0.06)


def _spine(xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    column = _ellipse_path((xb / 0.075) ** 2)
    phase = (yb + 1.0) / 0.095
    phase = phase - np.floor(phase)
    discs = 1.0 - 0.35 * np.exp(-(((phase - 0.5) / 0.08) ** 2))  # darker intervertebral discs
    pedicles = 0.3 * np.exp(-(((np.abs(xb) - 0.045) / 0.012) ** 2) - ((phase - 0.3) / 0.15) ** 2)
    return column * discs + pedicles * (np.abs(xb) < 0.07)


_TEXTURE_GRID = 256  # patient textures are drawn once on this body-coordinate grid, then resampled per study


@functools.lru_cache(maxsize=64)
def _vessel_tree(seed: int) -> np.ndarray:
    """A random branching vascular tree per lung, rasterised once per patient on the texture grid.

    From each hilum, 7 trunks fan out; every segment forks in two and shrinks, for 6 generations. Each segment is
    splatted as points along its length, weighted by its cross-section, then blurred: thick central vessels,
    thin peripheral branches, and bright dots at the forks, the natural nodule mimics. One generation is one
    vectorised step.
    """
    rng = np.random.default_rng(seed)
    n = _TEXTURE_GRID
    side = np.repeat([-1.0, 1.0], 7)
    angle = np.tile(np.linspace(-1.35, 1.45, 7), 2) + rng.normal(0.0, 0.1, 14)
    x, y = side * 0.19, np.full(14, -0.05)
    length, width = 0.2, 1.0
    layers = [np.zeros((n, n), np.float32), np.zeros((n, n), np.float32)]
    for level in range(6):
        angle = angle + rng.normal(0.0, 0.12, angle.shape)
        seg_length = length * rng.uniform(0.8, 1.2, angle.shape)
        x1, y1 = x + side * np.cos(angle) * seg_length, y + np.sin(angle) * seg_length
        t = np.linspace(0.0, 1.0, max(2, int(length * n * 1.2)))[None, :]
        cols = np.clip((x[:, None] + (x1 - x)[:, None] * t + 1.0) * (n / 2.0), 0, n - 1).astype(np.intp)
        rows = np.clip((y[:, None] + (y1 - y)[:, None] * t + 1.0) * (n / 2.0), 0, n - 1).astype(np.intp)
        np.add.at(layers[min(level, 2) // 2], (rows.ravel(), cols.ravel()), width * width)
        # Fork: each end point starts two children turned to either side.
        spread = rng.uniform(0.25, 0.6, angle.shape)
        x, y, side = np.repeat(x1, 2), np.repeat(y1, 2), np.repeat(side, 2)
        angle = np.repeat(angle, 2) + np.tile([-1.0, 1.0], angle.size) * np.repeat(spread, 2)
        length, width = length * 0.72, width * 0.7
    tree = ndimage.gaussian_filter(layers[0], 2.2) * 3.0 + ndimage.gaussian_filter(layers[1], 0.9)
    return (tree / max(float(np.percentile(tree, 99.5)), 1e-6)).astype(np.float32)


def _texture_coordinates(xb: np.ndarray, yb: np.ndarray) -> list[np.ndarray]:
    half = _TEXTURE_GRID / 2.0
    return [(yb + 1.0) * half - 0.5, (xb + 1.0) * half - 0.5]


@functools.lru_cache(maxsize=64)
def _lung_texture(seed: int) -> np.ndarray:
    """Everything patient-specific inside the lungs, as one density grid: vessels, hilar density, fine mottle."""
    n = _TEXTURE_GRID
    vessels = np.minimum(_vessel_tree(seed), 1.5)
    centres = (np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0
    hila = np.exp(-(((np.abs(centres[None, :]) - 0.2) / 0.07) ** 2) - ((centres[:, None] + 0.05) / 0.11) ** 2)
    rng = np.random.default_rng(seed + 1)
    mottle = ndimage.gaussian_filter(rng.standard_normal((n, n)), 1.2, mode="wrap")
    return (0.2 * (vessels + 0.22 * hila) + 0.012 * mottle / mottle.std()).astype(np.float32)


def render_anatomy(anatomy: Anatomy, pose: Pose, size: int) -> AnatomyRender:
    """Draw the patient's chest for one study into a size×size density map."""
    xb, yb = body_coordinates(size, pose)
    ax = np.abs(xb)

    # Soft tissue: neck, shoulders, trunk; path length through an elliptic cross-section.
    shoulders = anatomy.body_half_width + 0.1 * np.exp(-(((yb + 0.7) / 0.14) ** 2))
    half_width = 0.24 + (shoulders - 0.24) * _smooth((yb + 1.02) / 0.22)
    body = _ellipse_path((xb / half_width) ** 2)
    body_mask = body > 0
    density = 1.05 * anatomy.habitus * np.sqrt(body)

    air = lung_fields(anatomy, pose, xb, yb)
    lung_mask = air > 0
    density = density - 0.52 * air

    heart = _ellipse_path(_heart_q(anatomy, pose, xb, yb))
    density += 0.03 * heart
    dome = dome_y(anatomy, pose, xb)
    density += 0.15 * _smooth((yb - dome) / 0.08) * body  # abdomen below the diaphragm
    bubble = ((xb - 0.42) / 0.11) ** 2 + ((yb - dome - 0.09) / 0.06) ** 2  # gastric air under the left dome
    density -= 0.12 * _ellipse_path(bubble) * (yb > dome + 0.02)
    density -= 0.18 * _ellipse_path((xb / 0.035) ** 2) * _smooth((-0.25 - yb) / 0.05)  # trachea
    if anatomy.breast > 0:
        breast = ((ax - 0.45) / 0.33) ** 2 + ((yb - dome + 0.06) / 0.25) ** 2
        density += anatomy.breast * np.sqrt(_ellipse_path(breast))

    # Lung texture: hilar vessels radiating outwards plus fine parenchymal mottle, both patient-specific.
    grid = _lung_texture(anatomy.texture_seed)
    texture = ndimage.map_coordinates(grid, _texture_coordinates(xb, yb), order=1, mode="nearest")
    density += texture * np.sqrt(air)

    # Bones. Ribs below the domes are faint: the dense abdomen swamps them.
    ribs = _ribs(anatomy, xb, yb) * (body > 0.05) * (1.0 - 0.6 * _smooth((yb - dome) / 0.1))
    density += 0.13 * ribs + 0.17 * _clavicles(xb, yb) + 0.12 * _spine(xb, yb) * body
    humeri = np.maximum(
        _ellipse_path(((xb - 0.98) / 0.13) ** 2 + ((yb + 0.72) / 0.12) ** 2),
        _ellipse_path(((xb + 0.98) / 0.13) ** 2 + ((yb + 0.72) / 0.12) ** 2),
    )
    density += 0.3 * humeri
    density = np.clip(density, 0.0, None).astype(np.float32, copy=False)
    return AnatomyRender(
        density=density,
        lung_air=air.astype(np.float32, copy=False),
        lung_mask=lung_mask,
        body_mask=body_mask,
        rib_map=ribs,
        xb=xb,
        yb=yb,
    )
