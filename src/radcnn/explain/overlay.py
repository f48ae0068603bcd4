"""Overlay figures: the radiograph in grayscale, the map in colour on top, a colour bar, the probability in the title.

Figures are built with matplotlib's object API on an Agg canvas — no pyplot state machine, no global rcParams —
so rendering is thread-safe and leaves the caller's matplotlib configuration alone.

Colour scales: a map that is non-negative (Grad-CAM) uses a sequential map from 0 to its maximum, with low values
transparent so the anatomy stays visible; a signed map (Integrated Gradients, LIME, SHAP) uses a diverging map
centred on 0 with symmetric limits, so red is evidence for the target and blue evidence against it.

Galleries pass ``limits`` from `shared_limits` — one scale per method over all the gallery's images — so that a
normal film at p = 0.002, whose map is weak, does not glow like a confident positive whose map is strong (a
per-image scale would stretch every map to full colour). `map_peak` is printed under each map besides.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radcnn.io import atomic_path

SEQUENTIAL_CMAP = "inferno"
DIVERGING_CMAP = "RdBu_r"


def _figure(width_in: float, height_in: float, dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def colour_limits(attribution: np.ndarray) -> tuple[float, float, bool]:
    """(vmin, vmax, signed): symmetric around 0 for signed maps, 0..max for non-negative ones.

    A robust maximum (99.5th percentile of |map|) keeps one extreme pixel from washing out the rest.
    """
    values = np.asarray(attribution, dtype=np.float64)
    finite = values[np.isfinite(values)]
    signed = bool(finite.size and finite.min() < 0)
    top = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 0.0
    if top <= 0:
        top = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    return (-top, top, True) if signed else (0.0, top, False)


def shared_limits(maps) -> tuple[float, float, bool]:
    """`colour_limits` over several maps at once: one colour scale for a method across a gallery's images."""
    arrays = [np.asarray(m, dtype=np.float64).ravel() for m in maps]
    return colour_limits(np.concatenate(arrays) if arrays else np.zeros(1))


def map_peak(attribution: np.ndarray) -> float:
    """The largest |attribution| of a map (0 for an empty or all-NaN map)."""
    values = np.abs(np.asarray(attribution, dtype=np.float64))
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 0.0


def draw_overlay(ax, image: np.ndarray, attribution: np.ndarray, *, alpha: float = 0.55, limits=None):
    """Draw the grayscale image and the coloured map on `ax`; returns the map's image artist (for a colour bar).
    ``limits`` (vmin, vmax, signed) fixes the colour scale (e.g. `shared_limits`); default: this map's own."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    image = np.asarray(image, dtype=np.float32)
    attribution = np.asarray(attribution, dtype=np.float32)
    vmin, vmax, signed = colour_limits(attribution) if limits is None else limits
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    norm = Normalize(vmin=vmin, vmax=vmax, clip=True)
    cmap = colormaps[DIVERGING_CMAP if signed else SEQUENTIAL_CMAP]
    rgba = cmap(norm(attribution))
    # Opacity follows |map| so weak attributions do not hide the radiograph.
    strength = np.clip(np.abs(attribution) / max(abs(vmin), abs(vmax)), 0.0, 1.0)
    rgba[..., 3] = alpha * strength
    ax.imshow(rgba, interpolation="nearest")
    ax.set_axis_off()
    return ScalarMappable(norm=norm, cmap=cmap)


def render_overlay(
    image: np.ndarray,
    attribution: np.ndarray,
    *,
    title: str = "",
    dpi: int = 100,
    size_in: float = 4.0,
    limits: tuple[float, float, bool] | None = None,
) -> bytes:
    """One overlay with a colour bar as PNG bytes (``limits``: a shared colour scale, see `shared_limits`)."""
    fig = _figure(size_in * 1.22, size_in, dpi)
    ax = fig.add_axes((0.02, 0.04, 0.76, 0.84))
    mappable = draw_overlay(ax, image, attribution, limits=limits)
    cax = fig.add_axes((0.81, 0.1, 0.04, 0.72))
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label("attribution", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


def render_image(
    image: np.ndarray,
    *,
    title: str = "",
    boxes: Sequence[tuple[float, float, float, float]] = (),
    dpi: int = 100,
    size_in: float = 4.0,
) -> bytes:
    """The input radiograph alone, at the same scale as the overlays (the gallery's first column), with any
    ground-truth `boxes` (x0, y0, x1, y1 in the image's pixels) outlined."""
    fig = _figure(size_in * 1.22, size_in, dpi)
    ax = fig.add_axes((0.02, 0.04, 0.76, 0.84))
    ax.imshow(np.asarray(image, dtype=np.float32), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    _draw_boxes(ax, boxes)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


def render_grid(
    rows: Sequence[tuple[np.ndarray, dict[str, np.ndarray], str]],
    *,
    boxes: Sequence[Sequence[tuple[float, float, float, float]]] | None = None,
    dpi: int = 110,
    cell_in: float = 2.0,
) -> bytes:
    """Images as rows, methods as columns (first column the input): the side-by-side figure of the README.

    `rows` holds (image (H, W), {method: map}, row title); optional `boxes` per row are drawn as outlines
    (x0, y0, x1, y1 in the image's pixels) on the input column.
    """
    methods = list(rows[0][1]) if rows else []
    # One colour scale per method across the rows, so a weak map looks weak beside a strong one.
    limits = {method: shared_limits([maps[method] for _, maps, _ in rows]) for method in methods}
    n_cols = 1 + len(methods)
    fig = _figure(cell_in * n_cols, cell_in * len(rows) + 0.4, dpi)
    grid = fig.add_gridspec(len(rows), n_cols, wspace=0.04, hspace=0.12, left=0.01, right=0.99, top=0.93, bottom=0.01)
    for r, (image, maps, title) in enumerate(rows):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(np.asarray(image, dtype=np.float32), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=7)
        _draw_boxes(ax, boxes[r] if boxes else ())
        for c, method in enumerate(methods, start=1):
            ax = fig.add_subplot(grid[r, c])
            draw_overlay(ax, image, maps[method], limits=limits[method])
            if r == 0:
                ax.set_title(method, fontsize=8)
    return _png(fig)


def _draw_boxes(ax, boxes: Sequence[tuple[float, float, float, float]], colour: str = "lime") -> None:
    from matplotlib.patches import Rectangle

    for x0, y0, x1, y1 in boxes:
        # Pixel c spans [c - 0.5, c + 0.5] in imshow coordinates, so a box edge at x sits at x - 0.5.
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, lw=0.9))


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    return buffer.getvalue()


def write_png(data: bytes, path: str | Path) -> Path:
    """Write PNG bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
