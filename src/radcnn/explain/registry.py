"""`EXPLAINERS`: every explanation method is a small function registered beside its definition.

An explainer has one signature, so the driver, the evaluation and the sanity check treat all methods alike::

    explain(target: ScoredModel, images: Tensor (N, 1, H, W), targets: Tensor (N,) long,
            settings: ExplainSettings, seeds: list[int]) -> np.ndarray (N, H, W) float32

The returned map is at the model's input resolution; larger values mean "more evidence for the target".
Each entry's info record says what the method needs (``needs_conv``), what it attributes (``output``:
the target's logit or its probability) and whether it samples at random (``stochastic``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from radcnn.errors import MissingExtraError, RadcnnError, UnknownNameError
from radcnn.registry import EntryInfo, Registry

EXPLAINERS: Registry = Registry("explainer")

# Importing these modules registers their methods; done lazily so that `import radcnn` stays light.
_METHOD_MODULES = ("radcnn.explain.gradcam", "radcnn.explain.attribution", "radcnn.explain.superpixel")

# The order in which methods are shown (galleries, tables): class-activation maps, gradients, perturbations.
DISPLAY_ORDER = (
    "gradcam",
    "gradcam_pp",
    "integrated_gradients",
    "gradient_shap",
    "occlusion",
    "lime",
    "kernel_shap",
)


class ExplanationError(RadcnnError):
    """An explanation cannot be computed as asked (wrong method for the model, bad layer name, ...)."""


@dataclass(frozen=True)
class ExplainSettings:
    """Knobs shared by the methods; `None` means the method's own default (chosen to meet the speed targets).

    The defaults keep LIME and Kernel SHAP under 10 s per 224×224 image on a 2-core CPU for the seed CNN
    (see benchmarks/explain_speed.py); raise `n_samples` for smoother superpixel maps.
    """

    layer: str | None = None  # Grad-CAM target layer (module name); None = found automatically
    n_samples: int | None = None  # LIME / Kernel SHAP perturbations (default 300), Gradient SHAP samples (16)
    ig_steps: int = 32  # Integrated Gradients path steps
    n_segments: int = 100  # SLIC superpixels for LIME / Kernel SHAP
    compactness: float = 0.1  # SLIC compactness for [0, 1] grayscale images (higher = squarer segments)
    perturbations_per_eval: int = 50  # perturbed images per forward pass (LIME, Kernel SHAP, Occlusion)
    occlusion_window: int | None = None  # square patch side in pixels; None = 1/8 of the shorter side
    occlusion_stride: int | None = None  # None = half the window
    fill: str = "blur"  # what perturbation methods put where they hide a region: "blur" | "mean" | "zero"

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise ExplanationError(f"fill must be one of {', '.join(FILLS)}, got {self.fill!r}")
        if self.n_samples is not None and self.n_samples < 2:
            raise ExplanationError(f"n_samples must be at least 2, got {self.n_samples}")
        if self.ig_steps < 2 or self.n_segments < 2 or self.perturbations_per_eval < 1:
            raise ExplanationError("ig_steps and n_segments must be ≥ 2 and perturbations_per_eval ≥ 1")


FILLS = ("blur", "mean", "zero")

Explainer = Callable[..., object]


def _load_methods() -> None:
    for module in _METHOD_MODULES:
        importlib.import_module(module)


def explainer_names() -> list[str]:
    """Registered method names in display order."""
    _load_methods()
    return sorted(EXPLAINERS.names(), key=_display_rank)


def explainer_infos() -> list[EntryInfo]:
    _load_methods()
    return sorted(EXPLAINERS.infos(), key=lambda info: _display_rank(info.name))


def get_explainer(name: str):
    """The registry entry of `name`; an unknown name raises UnknownNameError listing the valid ones."""
    _load_methods()
    return EXPLAINERS.get(name)


def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """`"gradcam,lime"`, `["gradcam", "lime"]` or `"all"` → validated method names (order kept, duplicates dropped)."""
    _load_methods()
    items = methods.split(",") if isinstance(methods, str) else list(methods)
    names: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if item == "all":
            names.extend(explainer_names())
            continue
        if item not in EXPLAINERS:
            raise UnknownNameError("explanation method", item, [*explainer_names(), "all"])
        names.append(item)
    if not names:
        raise ExplanationError(f"no explanation method given; valid names: {', '.join(explainer_names())}, all")
    return list(dict.fromkeys(names))


def _display_rank(name: str) -> tuple[int, str]:
    return (DISPLAY_ORDER.index(name) if name in DISPLAY_ORDER else len(DISPLAY_ORDER), name)


def require_captum() -> None:
    """Captum and scikit-image come with the `explain` extra; say which pip command adds them."""
    for module in ("captum", "skimage"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(module, "explain") from None
