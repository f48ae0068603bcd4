"""Reading a weights file safely and translating its tensor names to the names of radcnn's models.

Three sources are understood:

* ``radcnn`` — a safetensors file written by `radcnn.models.checkpoint.save_model` (or any state dict whose names
  are already the model's own, e.g. a plain ``torch.save(model.state_dict())`` of a radcnn model).
* ``torchvision`` — torchvision's ImageNet state dicts for ResNet-18/50 and DenseNet-121 (``resnet18-f37072fd.pth``,
  ``densenet121-a639ec97.pth``). MONAI's ResNet uses torchvision's names; MONAI's DenseNet wraps each dense layer's
  modules in ``.layers`` (``denselayer1.norm1`` → ``denselayer1.layers.norm1``) and calls the classifier
  ``class_layers.out``. torchvision's own DenseNet files still carry the pre-0.3 names ``denselayer1.norm.1``, which
  torchvision (and MONAI's ``_load_state_dict``, whose regex is the model for ours) rewrite on loading; both
  spellings are accepted here.
* ``torchxrayvision`` — TorchXRayVision's ``densenet121-res224-*`` weights: torchvision's DenseNet layout with a
  1-channel stem and an 18-output classifier. TorchXRayVision publishes them as whole pickled models; only a state
  dict is accepted (see `read_weights`).

Nothing here executes pickled code: safetensors holds only tensors, and `torch.load` runs with
``weights_only=True``. A file that cannot be read that way is refused with the command that converts it in a
trusted environment.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from radcnn.errors import ModelError
from radcnn.models.checkpoint import SPEC_KEY

SOURCES = ("radcnn", "torchvision", "torchxrayvision")

# Architectures each foreign source has a name mapping for.
SOURCE_ARCHITECTURES = {
    "torchvision": ("resnet18", "resnet50", "densenet121"),
    "torchxrayvision": ("densenet121",),
}

# Keys under which training frameworks nest a state dict (Lightning, common research scripts).
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model")

# torchvision DenseNet dense-layer names, current (norm1) and legacy (norm.1), → MONAI's `.layers.norm1`.
_DENSE_LAYER_CURRENT = re.compile(r"^(.*denselayer\d+)\.((?:norm|relu|conv)[12])\.(.+)$")
_DENSE_LAYER_LEGACY = re.compile(r"^(.*denselayer\d+)\.(norm|relu|conv)\.([12])\.(.+)$")

_CONVERT_HINT = (
    'convert it once, in an environment where you trust the file, with: python -c "import torch; '
    "m = torch.load('IN', weights_only=False); "
    "torch.save(getattr(m, 'state_dict', lambda: m)(), 'OUT.pt')\""
)


@dataclass(frozen=True)
class WeightsFile:
    """The tensors of one file, by the file's own names, plus the radcnn ModelSpec JSON when it has one."""

    path: Path
    tensors: dict[str, torch.Tensor]
    container: str  # "safetensors" | "torch"
    spec_json: str | None = None
    note: str = ""  # how the state dict was found inside the file (nested key, stripped prefix)


def read_weights(path: str | Path) -> WeightsFile:
    """Read a safetensors file or a `torch.save`d state dict without ever unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    if is_safetensors(path):
        return _read_safetensors(path)
    return _read_torch(path)


def is_safetensors(path: Path) -> bool:
    """safetensors files start with an 8-byte little-endian header length followed by a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 0 < length <= path.stat().st_size - 8 and head[8:9] == b"{"


def _read_safetensors(path: Path) -> WeightsFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            names = handle.keys()  # the handle itself is not iterable
            tensors = {name: handle.get_tensor(name) for name in names}
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
    return WeightsFile(path, tensors, "safetensors", spec_json=metadata.get(SPEC_KEY))


def _read_torch(path: Path) -> WeightsFile:
    with path.open("rb") as handle:
        magic = handle.read(4)
    # torch.save writes a zip archive (since torch 1.6) or, before that, a pickle stream (protocol byte 0x80).
    torch_file = magic == b"PK\x03\x04" or magic[:1] == b"\x80"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — torch raises many types for untrusted bytes; all mean "cannot read"
        if torch_file and "weights only load failed" in str(exc).lower():
            raise ModelError(
                f"{path}: this file needs Python's pickle to load (it holds objects such as a whole pickled model, "
                f"not only tensors), and radcnn never unpickles code from a weights file; {_CONVERT_HINT}"
            ) from None
        raise ModelError(
            f"{path}: not a readable weights file (expected safetensors or a torch.save'd state dict; "
            f"{type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    tensors, note = _find_state_dict(obj, path)
    return WeightsFile(path, tensors, "torch", note=note)


def _find_state_dict(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensor dict inside what torch.load returned: the dict itself, or one nested under a known key."""
    note = ""
    if isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in _NESTED_STATE_KEYS:
            if isinstance(obj.get(key), dict) and _is_tensor_dict(obj[key]):
                obj, note = obj[key], f"state dict found under {key!r}"
                break
    if not isinstance(obj, dict) or not obj or not _is_tensor_dict(obj):
        kind = type(obj).__name__
        keys = f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else ""
        raise ModelError(f"{path}: expected a state dict (tensor name → tensor), found a {kind}{keys}")
    state = {str(k): v for k, v in obj.items()}
    # DataParallel / DDP save every name with a "module." prefix.
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
        note = (note + "; " if note else "") + "'module.' prefix removed"
    return state, note


def _is_tensor_dict(obj: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in obj.values())


def detect_source(weights: WeightsFile, model_names: set[str]) -> str:
    """Tell the source from the file: radcnn metadata, else the tensor-name patterns of each format."""
    if weights.spec_json is not None:
        return "radcnn"
    names = set(weights.tensors)
    dense_torchvision = any(_DENSE_LAYER_CURRENT.match(n) or _DENSE_LAYER_LEGACY.match(n) for n in names) and not any(
        ".layers." in n for n in names
    )
    if dense_torchvision and "features.conv0.weight" in names:
        # TorchXRayVision's DenseNets take one (grey) channel; torchvision's ImageNet DenseNets three.
        return "torchxrayvision" if weights.tensors["features.conv0.weight"].shape[1] == 1 else "torchvision"
    resnet = {"conv1.weight", "layer1.0.conv1.weight", "fc.weight"} <= names
    if resnet and not any(re.match(r"^layer\d+\.\d+\.downsample\.0\.bias$", n) for n in names):
        return "torchvision"  # MONAI's ResNet adds a bias to the downsample conv; torchvision's has none
    if names & model_names:
        return "radcnn"
    raise ModelError(
        f"{weights.path}: cannot tell the format of this weights file; its tensor names "
        f"({', '.join(sorted(names)[:5])}, ...) match neither a radcnn model, torchvision ResNet/DenseNet nor "
        f"TorchXRayVision DenseNet — pass the source explicitly ({', '.join(SOURCES)})"
    )


def to_model_name(file_name: str, source: str, architecture: str) -> str:
    """The model tensor a file tensor belongs to (the name itself when the source uses the model's names)."""
    if source in ("torchvision", "torchxrayvision") and architecture == "densenet121":
        if file_name.startswith("classifier."):
            return "class_layers.out." + file_name[len("classifier.") :]
        legacy = _DENSE_LAYER_LEGACY.match(file_name)
        if legacy:
            return f"{legacy.group(1)}.layers.{legacy.group(2)}{legacy.group(3)}.{legacy.group(4)}"
        current = _DENSE_LAYER_CURRENT.match(file_name)
        if current:
            return f"{current.group(1)}.layers.{current.group(2)}.{current.group(3)}"
    return file_name  # torchvision's ResNet names are MONAI's ResNet names
