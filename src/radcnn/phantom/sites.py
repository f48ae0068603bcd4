"""Scanner sites of the phantom: named profiles plus the imaging chain that turns density into a display image.

A "site" is a hospital with one X-ray system. Real multi-site data differs in ways a CNN can latch onto:
exposure (quantum noise), detector sharpness, the vendor's display processing (gamma, S-curve, edge
enhancement), how many bits are stored, whether the file is MONOCHROME1 (inverted) or MONOCHROME2, and the
modality/IOD (CR plates versus DX flat panels). Each `SiteProfile` fixes those; `acquire` applies the physics
(Beer–Lambert attenuation, Poisson quantum noise in the log domain) and the vendor processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy import ndimage

from radcnn.errors import ConfigError, UnknownNameError

# Attenuation scale of the density map: counts = N0 * exp(-ATTENUATION * density). Sets how much darker
# (noisier) the mediastinum is than the lungs.
ATTENUATION = 2.6


@dataclass(frozen=True)
class SiteProfile:
    """One scanner: identity written into the DICOM header, and the parameters of its imaging chain."""

    name: str
    summary: str
    institution: str
    manufacturer: str
    model_name: str
    station_name: str
    modality: str  # "CR" (computed radiography plate) or "DX" (digital flat panel)
    photometric: str  # "MONOCHROME1" (stored inverted: bright = low value) or "MONOCHROME2"
    bits_stored: int  # 12, 14 or 16, stored in uint16
    stored_range: tuple[float, float]  # fraction of [0, 2**bits - 1] the display range occupies
    photons: float  # mean quanta per 256-grid pixel for the unattenuated beam: sets quantum noise
    blur_px: float  # detector blur (Gaussian sigma) in pixels of a 256-pixel image
    gamma: float  # display gamma applied after windowing (>1 darkens mid-tones)
    s_curve: float  # strength of the vendor's sigmoid tone curve (0 = linear)
    edge_enhance: float  # unsharp-mask amount of the vendor's processing
    kvp: float  # tube voltage written to the header
    detector_type: str  # DICOM DetectorType (DX) / plate description (CR)

    @property
    def max_value(self) -> int:
        """Largest storable value, 2**bits_stored - 1."""
        return (1 << self.bits_stored) - 1

    @property
    def stored_limits(self) -> tuple[int, int]:
        """Stored values that display as black and white (before any MONOCHROME1 inversion)."""
        lo, hi = self.stored_range
        return int(round(lo * self.max_value)), int(round(hi * self.max_value))


_PROFILES = (
    SiteProfile(
        name="site_a",
        summary="CR plate reader, MONOCHROME1, 12 bits, noisy, strong edge enhancement",
        institution="Northfield General Hospital",
        manufacturer="FUJIFILM Corporation",
        model_name="FCR PROFECT CS",
        station_name="NFG-CR01",
        modality="CR",
        photometric="MONOCHROME1",
        bits_stored=12,
        stored_range=(0.0, 1.0),
        photons=1600.0,
        blur_px=0.9,
        gamma=1.05,
        s_curve=1.6,
        edge_enhance=0.55,
        kvp=110.0,
        detector_type="STORAGE PHOSPHOR",
    ),
    SiteProfile(
        name="site_b",
        summary="DX flat panel, MONOCHROME2, 14 bits, low noise, mild processing",
        institution="St. Mary's Medical Center",
        manufacturer="Carestream Health",
        model_name="DRX-Evolution Plus",
        station_name="SMMC-DX2",
        modality="DX",
        photometric="MONOCHROME2",
        bits_stored=14,
        stored_range=(0.03, 0.93),
        photons=5200.0,
        blur_px=0.6,
        gamma=1.25,
        s_curve=1.2,
        edge_enhance=0.2,
        kvp=120.0,
        detector_type="SCINTILLATOR",
    ),
    SiteProfile(
        name="site_c",
        summary="DX flat panel, MONOCHROME2, 16 bits, medium noise, high-contrast tone curve",
        institution="Lakeside University Clinic",
        manufacturer="SIEMENS",
        model_name="Ysio Max",
        station_name="LUC-XR3",
        modality="DX",
        photometric="MONOCHROME2",
        bits_stored=16,
        stored_range=(0.01, 0.98),
        photons=3000.0,
        blur_px=0.7,
        gamma=1.15,
        s_curve=2.2,
        edge_enhance=0.35,
        kvp=125.0,
        detector_type="SCINTILLATOR",
    ),
)

SITES = MappingProxyType({profile.name: profile for profile in _PROFILES})
"""The named site profiles (read-only mapping name → SiteProfile)."""


def site_names() -> list[str]:
    return sorted(SITES)


def get_site(name: str) -> SiteProfile:
    """The profile called `name`; an unknown name raises UnknownNameError listing the valid ones."""
    try:
        return SITES[name]
    except KeyError:
        raise UnknownNameError("site", name, site_names()) from None


def resolve_sites(sites: str | Sequence[str | SiteProfile] | None) -> tuple[SiteProfile, ...]:
    """Turn `None` (all sites), a comma-separated string, or a sequence of names/profiles into profiles."""
    if sites is None:
        return tuple(SITES[name] for name in site_names())
    if isinstance(sites, str):
        sites = [part.strip() for part in sites.split(",") if part.strip()]
    resolved = tuple(site if isinstance(site, SiteProfile) else get_site(site) for site in sites)
    if not resolved:
        raise ConfigError(f"no sites given; choose from: {', '.join(site_names())}")
    names = [site.name for site in resolved]
    if len(set(names)) != len(names):
        raise ConfigError(f"a site is listed twice: {', '.join(names)}")
    return resolved


def acquire(
    density: np.ndarray,
    body_mask: np.ndarray,
    site: SiteProfile,
    *,
    exposure: float,
    window_jitter: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Expose, detect and process a density map into a display image (float32 in [0, 1], bone bright).

    `exposure` scales the site's photon count (per-study mAs variation); `window_jitter` shifts the automatic
    window's low/high ends (fractions of its width), the study-to-study brightness/contrast variation that
    automatic exposure recognition leaves in real images.
    """
    size = density.shape[0]
    scale = size / 256.0  # blur/kernel sizes are specified on a 256-pixel grid
    signal = ndimage.gaussian_filter(density, site.blur_px * scale, mode="nearest", truncate=2.5)
    # Quantum noise: counts ~ Poisson(N exp(-mu)). In the log domain the noise is ~ N(0, 1/sqrt(counts)) / mu-scale.
    # Bigger pixels (smaller images) collect more quanta, so the noise shrinks with the pixel area.
    photons = site.photons * exposure / (scale * scale)
    counts = photons * np.exp(-ATTENUATION * signal)
    sigma = 1.0 / (ATTENUATION * np.sqrt(np.maximum(counts, 1.0)))
    log_signal = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)

    # Automatic windowing on the body (not the direct-exposure background, which stays black).
    step = max(1, size // 96)
    sample = log_signal[::step, ::step][body_mask[::step, ::step]]
    if sample.size < 16:
        sample = log_signal.ravel()
    lo, hi = np.percentile(sample, [0.5, 99.7])
    width = max(float(hi - lo), 1e-3)
    lo, hi = lo + window_jitter[0] * width, hi + window_jitter[1] * width
    display = np.clip((log_signal - lo) / (hi - lo), 0.0, 1.0)

    if site.s_curve > 0:  # vendor tone curve: a sigmoid around mid-grey, renormalised to keep 0 → 0 and 1 → 1
        half = np.tanh(0.5 * site.s_curve)
        display = 0.5 + 0.5 * np.tanh(site.s_curve * (display - 0.5)) / half
    display = display**site.gamma
    if site.edge_enhance > 0:  # unsharp masking, as CR/DX post-processing does to make ribs and vessels crisp
        # Two passes of a box filter ≈ a Gaussian of sigma ~5 px, at a fraction of the cost.
        width = max(3, int(round(9 * scale)) | 1)
        low_pass = ndimage.uniform_filter(ndimage.uniform_filter(display, width, mode="nearest"), width, mode="nearest")
        display = display + site.edge_enhance * (display - low_pass)
    return np.clip(display, 0.0, 1.0).astype(np.float32, copy=False)
