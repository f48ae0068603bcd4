"""The official MedMNIST 2-D files: their label names, tasks and MD5 checksums, and a verified, atomic download.

The table is copied from the ``INFO`` dictionary of the ``medmnist`` package, version 3.0.2
(github.com/MedMNIST/MedMNIST, ``medmnist/info.py``), whose URLs point at the Zenodo record 10519652 that holds
every 2-D set at 28, 64, 128 and 224 pixels (MedMNIST v2 at 28 px, plus MedMNIST+). The 28-pixel OrganA/C/S files
in that record differ from the older record 6496656, hence their checksums differ from medmnist 2.x.

Tests never touch the network: :func:`download_medmnist` takes a ``url`` (``file://`` works) and an ``opener``.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.io import atomic_path

log = logging.getLogger(__name__)

ZENODO_RECORD = "10519652"
SIZES = (28, 64, 128, 224)


class DownloadError(DataError):
    """A download failed or its checksum did not match (nothing is kept under the final name)."""


@dataclass(frozen=True)
class MedMNISTInfo:
    name: str
    task: str  # "binary-class", "multi-label, binary-class", "multi-class", "ordinal-regression"
    labels: tuple[str, ...]  # class names by index, as in medmnist INFO["label"]
    channels: int
    licence: str
    md5: dict[int, str]  # size → MD5 of the official .npz


_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)
_BY = "CC BY 4.0"

MEDMNIST_2D: dict[str, MedMNISTInfo] = {
    info.name: info
    for info in (
        MedMNISTInfo(
            "pathmnist",
            "multi-class",
            (
                "adipose",
                "background",
                "debris",
                "lymphocytes",
                "mucus",
                "smooth muscle",
                "normal colon mucosa",
                "cancer-associated stroma",
                "colorectal adenocarcinoma epithelium",
            ),
            3,
            _BY,
            {
                28: "a8b06965200029087d5bd730944a56c1",
                64: "55aa9c1e0525abe5a6b9d8343a507616",
                128: "ac42d08fb904d92c244187169d1fd1d9",
                224: "2c51a510bcdc9cf8ddb2af93af1eadec",
            },
        ),
        MedMNISTInfo(
            "chestmnist",
            "multi-label, binary-class",
            (
                "atelectasis",
                "cardiomegaly",
                "effusion",
                "infiltration",
                "mass",
                "nodule",
                "pneumonia",
                "pneumothorax",
                "consolidation",
                "edema",
                "emphysema",
                "fibrosis",
                "pleural",
                "hernia",
            ),
            1,
            _BY,
            {
                28: "02c8a6516a18b556561a56cbdd36c4a8",
                64: "9de6cd0b934ebb5b7426cfba5efbae16",
                128: "db107e5590b27930b62dbaf558aebee3",
                224: "45bd33e6f06c3e8cdb481c74a89152aa",
            },
        ),
        MedMNISTInfo(
            "dermamnist",
            "multi-class",
            (
                "actinic keratoses and intraepithelial carcinoma",
                "basal cell carcinoma",
                "benign keratosis-like lesions",
                "dermatofibroma",
                "melanoma",
                "melanocytic nevi",
                "vascular lesions",
            ),
            3,
            "CC BY-NC 4.0",
            {
                28: "0744692d530f8e62ec473284d019b0c7",
                64: "b70a2f5635c6199aeaa28c31d7202e1f",
                128: "2defd784463fa5243564e855ed717de1",
                224: "8974907d8e169bef5f5b96bc506ae45d",
            },
        ),
        MedMNISTInfo(
            "octmnist",
            "multi-class",
            ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
            1,
            _BY,
            {
                28: "c68d92d5b585d8d81f7112f81e2d0842",
                64: "e229e9440236b774d9f0dfef9d07bdaf",
                128: "0a97e76651ace45c5d943ee3f65b63ae",
                224: "abc493b6d529d5de7569faaef2773ba3",
            },
        ),
        MedMNISTInfo(
            "pneumoniamnist",
            "binary-class",
            ("normal", "pneumonia"),
            1,
            _BY,
            {
                28: "28209eda62fecd6e6a2d98b1501bb15f",
                64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971",
                224: "d6a3c71de1b945ea11211b03746c1fe1",
            },
        ),
        MedMNISTInfo(
            "retinamnist",
            "ordinal-regression",
            ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4"),
            3,
            _BY,
            {
                28: "bd4c0672f1bba3e3a89f0e4e876791e4",
                64: "afda852cc34dcda56f86ad2b2457dbcc",
                128: "e48e916a24454daf90583d4e6efb1a18",
                224: "eae7e3b6f3fcbda4ae613ebdcbe35348",
            },
        ),
        MedMNISTInfo(
            "breastmnist",
            "binary-class",
            ("malignant", "normal, benign"),
            1,
            _BY,
            {
                28: "750601b1f35ba3300ea97c75c52ff8f6",
                64: "742edef2a1fd1524b2efff4bd7ba9364",
                128: "363e4b3f8d712e9b5de15470a2aaadf1",
                224: "b56378a6eefa9fed602bb16d192d4c8b",
            },
        ),
        MedMNISTInfo(
            "bloodmnist",
            "multi-class",
            (
                "basophil",
                "eosinophil",
                "erythroblast",
                "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
                "lymphocyte",
                "monocyte",
                "neutrophil",
                "platelet",
            ),
            3,
            _BY,
            {
                28: "7053d0359d879ad8a5505303e11de1dc",
                64: "2b94928a2ae4916078ca51e05b6b800b",
                128: "adace1e0ed228fccda1f39692059dd4c",
                224: "b718ff6835fcbdb22ba9eacccd7b2601",
            },
        ),
        MedMNISTInfo(
            "tissuemnist",
            "multi-class",
            (
                "Collecting Duct, Connecting Tubule",
                "Distal Convoluted Tubule",
                "Glomerular endothelial cells",
                "Interstitial endothelial cells",
                "Leukocytes",
                "Podocytes",
                "Proximal Tubule Segments",
                "Thick Ascending Limb",
            ),
            1,
            _BY,
            {
                28: "ebe78ee8b05294063de985d821c1c34b",
                64: "123ece2eba09d0aa5d698fda57103344",
                128: "61b955355d7425a89687b06cca3ce0c2",
                224: "b077128c4a949f0a4eb01517f9037b9c",
            },
        ),
        MedMNISTInfo(
            "organamnist",
            "multi-class",
            _ORGANS,
            1,
            _BY,
            {
                28: "68e3f8846a6bd62f0c9bf841c0d9eacc",
                64: "2dcccc29b88e6da5a01161ef20cda288",
                128: "eeae80d0a227a8d099027e1b3cfd3b60",
                224: "50747347e05c87dd3aaf92c49f9f3170",
            },
        ),
        MedMNISTInfo(
            "organcmnist",
            "multi-class",
            _ORGANS,
            1,
            _BY,
            {
                28: "b9ceb9546e10131b32923c5bbeaea2b1",
                64: "3ce34a8724ea6f548e6db4744d03b6a9",
                128: "773c1f009daa3fe5d9a2a201b2a7ed94",
                224: "050f5e875dc056f6768abf94ec9995d1",
            },
        ),
        MedMNISTInfo(
            "organsmnist",
            "multi-class",
            _ORGANS,
            1,
            _BY,
            {
                28: "9ab87b696fb54e2a387ebe992d6ed5f1",
                64: "53a6d115339d874c25e309a994ff46d3",
                128: "ded0c5fa01a95dc4978b956f613e9b8e",
                224: "b354719e553fbbb2513d5533f52a4cb1",
            },
        ),
    )
}

Opener = Callable[..., object]
Progress = Callable[[int, int], None]


def medmnist_info(name: str) -> MedMNISTInfo:
    try:
        return MEDMNIST_2D[name]
    except KeyError:
        raise UnknownNameError("MedMNIST 2-D data set", name, sorted(MEDMNIST_2D)) from None


def medmnist_file_name(name: str, size: int = 28) -> str:
    """The official file name: ``pneumoniamnist.npz`` at 28 px, ``pneumoniamnist_224.npz`` otherwise."""
    if size not in SIZES:
        raise ConfigError(f"MedMNIST size must be one of {', '.join(map(str, SIZES))}, got {size}")
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def medmnist_url(name: str, size: int = 28) -> str:
    medmnist_info(name)
    return f"https://zenodo.org/records/{ZENODO_RECORD}/files/{medmnist_file_name(name, size)}?download=1"


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_medmnist(
    name: str,
    out_dir: str | Path,
    *,
    size: int = 28,
    md5: str | None = None,
    url: str | None = None,
    opener: Opener = urllib.request.urlopen,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch an official MedMNIST 2-D file into `out_dir`, verify its MD5, and only then give it its final name.

    `md5` overrides the table's checksum (give one when the record was re-published); `url` overrides the Zenodo
    address (a mirror, or ``file://`` in tests). A file already there with the right checksum is not fetched again.
    """
    info = medmnist_info(name)
    target = Path(out_dir) / medmnist_file_name(name, size)
    expected = (md5 or info.md5.get(size, "")).strip().lower()
    if not expected:
        raise ConfigError(f"no checksum known for {target.name}; pass md5=")
    if target.is_file():
        if file_md5(target) == expected:
            log.info("%s already present with the expected checksum", target)
            return target
        log.warning("%s exists but its checksum differs; downloading it again", target)
    source = url or medmnist_url(name, size)
    log.info("downloading %s", source)
    with atomic_path(target) as tmp:
        actual = _fetch(source, tmp, opener=opener, progress=progress, timeout=timeout)
        if actual != expected:
            raise DownloadError(f"{source}: MD5 {actual} does not match the expected {expected}; the file was not kept")
    return target


def _fetch(url: str, dest: Path, *, opener: Opener, progress: Progress | None, timeout: float) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with opener(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) if getattr(response, "headers", None) else 0
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total or done)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot download {url}: {reason}. On an offline machine, fetch the file elsewhere and pass the .npz path"
        ) from None
    return digest.hexdigest()
