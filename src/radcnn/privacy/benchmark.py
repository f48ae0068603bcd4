"""A planted de-identification benchmark with its answer key, MIDI-B style, on phantom radiographs.

`make_benchmark(root)` writes

    root/input/<PatientID>/<StudyDate>_<AccessionNumber>/IM0001.dcm   a PACS-style export (names identify!)
    root/input/<PatientID>/<PatientID>_notes.txt, root/input/Thumbs.db  PACS junk holding identifiers
    root/answer_key.json                                               required actions per input file
    root/lung_masks/IM0001.png                                         the phantom's lung fields (1-bit)

Every image is a phantom chest radiograph (`radcnn.phantom`) whose header carries planted identifiers in ~30
attributes (one private block too) and whose pixels carry burned-in text lines - name, PatientID, birth date,
accession number, study date, institution - in several fonts and sizes (1.2-3 % of the image height, as on
real radiographs), bright on the dark background or dark on a bright label box, in the corners and along the
edges, outside the lung fields.

The answer key lists, per input file, the actions a de-identifier must perform under the configuration the
key states (basic profile + Retain Longitudinal Temporal Information with Modified Dates, pseudonymised
patient, burned-in text detected and blanked). The action per attribute is written here by hand from PS3.15
Table E.1-1 (for the Type of each attribute in the DX IOD), not taken from radcnn's engine, so the scorer is an
independent check; the tests compare it with the reference table. Action types (as MIDI-B validates them):

    removed          attribute absent              emptied         present, zero length
    replaced         present, value differs        retained        value unchanged
    date_shifted     a valid date, moved by the same number of days for every date of one patient
    uid_changed      a different valid UID, the same replacement for the same original in every file
    pixels_retained  the lung-field pixels unchanged (>= 99 %)
    region_blanked   a planted text box filled uniformly (>= 97 % of its pixels one value)

Output files are matched to input files by InstanceNumber, a retained attribute made unique in the benchmark.
`lung_area_blanked` measures how much of the lung fields a run's blanked boxes (from its audit log) cover.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from radcnn.errors import ConfigError
from radcnn.io import write_json_atomic

KEY_FORMAT = "radcnn-deid-answer-key/1"
ANSWER_KEY_NAME = "answer_key.json"
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf")
PRIVATE_GROUP, PRIVATE_CREATOR = 0x0019, "RADCNN_PLANT"

# Hand-written from PS3.15 Table E.1-1 for a DX image, basic profile + modified dates (see the module docstring).
EXPECTED = {
    "PatientName": "replaced",  # Z, replaced by the keyed pseudonym
    "PatientID": "replaced",  # Z/D (Type 2): pseudonym
    "PatientBirthDate": "emptied",  # Z
    "PatientSex": "emptied",  # Z
    "PatientAge": "removed",  # X
    "PatientWeight": "removed",  # X
    "OtherPatientIDs": "removed",  # X
    "PatientAddress": "removed",  # X
    "PatientTelephoneNumbers": "removed",  # X
    "AdditionalPatientHistory": "removed",  # X
    "PatientComments": "removed",  # X
    "AccessionNumber": "emptied",  # Z
    "StudyID": "emptied",  # Z
    "ReferringPhysicianName": "emptied",  # Z
    "PerformingPhysicianName": "removed",  # X
    "PhysiciansOfRecord": "removed",  # X
    "OperatorsName": "removed",  # X/Z/D, Type 3
    "InstitutionName": "removed",  # X/Z/D, Type 3
    "InstitutionAddress": "removed",  # X
    "StationName": "removed",  # X/Z/D, Type 3
    "DeviceSerialNumber": "removed",  # X/Z/D, Type 3
    "StudyDescription": "removed",  # X
    "SeriesDescription": "removed",  # X
    "ImageComments": "removed",  # X
    "StudyDate": "date_shifted",  # Z, C with modified dates
    "SeriesDate": "date_shifted",  # X/D, C
    "AcquisitionDate": "date_shifted",  # X/Z, C
    "ContentDate": "date_shifted",  # Z/D, C
    "StudyInstanceUID": "uid_changed",  # U
    "SeriesInstanceUID": "uid_changed",  # U
    "SOPInstanceUID": "uid_changed",  # U
    "FrameOfReferenceUID": "uid_changed",  # U
    "Modality": "retained",  # not in the table
    "BodyPartExamined": "retained",
    "ViewPosition": "retained",
    "KVP": "retained",
    "Manufacturer": "retained",
    "PhotometricInterpretation": "retained",
    f"({PRIVATE_GROUP:04X},1010)": "removed",  # private, not declared safe
}


@dataclass(frozen=True)
class PlantedText:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in stored pixels
    polarity: str  # "bright" (on the dark background) | "dark" (on a bright label box)


def _font(index: int, height: int):
    from matplotlib import get_data_path
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / FONTS[index % len(FONTS)]), height)


def burn_text(display: np.ndarray, lines: list[str], lung: np.ndarray, rng: np.random.Generator) -> list[PlantedText]:
    """Burn `lines` into `display` (float, [0, 1], bright = dense) in place, outside the lung fields."""
    from PIL import Image, ImageDraw

    size = display.shape[0]
    rows = np.flatnonzero(lung.any(axis=1))
    lung_top, lung_bottom = (int(rows[0]), int(rows[-1])) if rows.size else (size // 3, 2 * size // 3)
    planted: list[PlantedText] = []
    corners = [("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right")]
    cursor = {c: int(size * 0.02) for c in corners}
    margin = int(size * 0.02)
    for i, line in enumerate(lines):
        corner = corners[i % len(corners)]
        height = max(8, int(size * rng.uniform(0.012, 0.03)))
        font = _font(int(rng.integers(len(FONTS))), height)
        polarity = "dark" if rng.random() < 0.35 else "bright"
        mask = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(mask)
        left, top, right, bottom = draw.textbbox((0, 0), line, font=font)
        width, tall = right - left, bottom - top
        x = margin if corner[1] == "left" else size - margin - width
        y = cursor[corner] if corner[0] == "top" else size - cursor[corner] - tall
        if (corner[0] == "top" and y + tall >= lung_top) or (corner[0] == "bottom" and y <= lung_bottom):
            continue  # no room between the edge and the lungs: real labels would overlap, ours stay clean
        cursor[corner] += tall + int(0.6 * height)
        draw.text((x - left, y - top), line, fill=255, font=font)
        glyphs = np.asarray(mask) > 127
        box = (x, y, x + width, y + tall)
        if polarity == "dark":
            pad = max(2, height // 4)
            display[max(0, y - pad) : y + tall + pad, max(0, x - pad) : x + width + pad] = 1.0
            display[glyphs] = 0.0
        else:
            display[glyphs] = 1.0
        planted.append(PlantedText(line, box, polarity))
    return planted


def _plant_header(ds: Dataset, patient, study: int, instance: int) -> None:
    pid, name = patient.patient_id, patient.name
    family = name.split("^")[0]
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = f"1.2.826.0.1.3680043.9.7778.{patient.index}.{study}.{instance}"
    ds.PatientWeight = "71.5"
    ds.OtherPatientIDs = f"{pid}-OLD"
    ds.PatientAddress = f"{instance} {family} Street, Springfield"
    ds.PatientTelephoneNumbers = f"555-01{instance:04d}"
    ds.AdditionalPatientHistory = f"smoker, see chart of {name.replace('^', ' ')}"
    ds.PatientComments = f"MRN {pid}"
    ds.PerformingPhysicianName = "HOUSE^GREGORY"
    ds.PhysiciansOfRecord = "CUDDY^LISA"
    ds.OperatorsName = "TECH^TINA"
    ds.InstitutionAddress = "1 Hospital Road, Springfield"
    ds.StudyDescription = f"CHEST PA {family}"
    ds.SeriesDescription = f"PA {pid}"
    ds.ImageComments = f"{name} {pid}"
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", f"{pid}^{name}")


def _record(ds: Dataset) -> list[dict]:
    actions = []
    for attribute, action in EXPECTED.items():
        private = attribute.startswith("(")
        original = str(ds[PRIVATE_GROUP, 0x1010].value) if private else str(ds.get(attribute, "") or "")
        actions.append({"action": action, "attribute": attribute, "original": original})
    return actions


def make_benchmark(
    root: str | Path, *, patients: int = 3, size: int = 1024, seed: int = 0, text: bool = True, junk: bool = True
) -> Path:
    """Write the benchmark under `root` (a new or empty folder); returns the answer key's path."""
    from PIL import Image

    from radcnn.phantom.generator import render_study, sample_patient
    from radcnn.phantom.writers import build_dataset

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"benchmark folder {root} exists and is not empty")
    if patients < 1 or size < 256:
        raise ConfigError(f"a benchmark needs at least 1 patient and 256-pixel images; got {patients}, {size}")
    rng = np.random.default_rng(seed)
    files: dict[str, dict] = {}
    planted_values: set[str] = set()
    instance = 0
    for index in range(patients):
        patient = sample_patient(seed, index)
        for study in range(len(patient.studies)):
            instance += 1
            image = render_study(patient, study, size=size)
            display = image.image.copy()
            ds0 = build_dataset(display, patient, study)
            lines = [
                patient.name.replace("^", ", "),
                f"ID {patient.patient_id}",
                f"DOB {patient.birth_date:%d.%m.%Y}",
                f"ACC {ds0.AccessionNumber}",
                f"{patient.studies[study].date:%Y-%m-%d}",
                str(ds0.InstitutionName),
            ]
            texts = burn_text(display, lines, image.lung_mask, rng) if text else []
            ds = build_dataset(display, patient, study)
            if text and "BurnedInAnnotation" in ds:
                del ds.BurnedInAnnotation  # the header does not tell: a detector has to look
            _plant_header(ds, patient, study, instance)
            rel = f"{patient.patient_id}/{ds.StudyDate}_{ds.AccessionNumber}/IM{instance:04d}.dcm"
            path = root / "input" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            mask_path = root / "lung_masks" / f"IM{instance:04d}.png"
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.lung_mask).save(mask_path)
            actions = _record(ds)
            lung = np.argwhere(image.lung_mask)
            (y0, x0), (y1, x1) = lung.min(axis=0), lung.max(axis=0) + 1
            actions.append({"action": "pixels_retained", "region": [int(x0), int(y0), int(x1), int(y1)]})
            for t in texts:
                actions.append({"action": "region_blanked", "box": list(t.box), "polarity": t.polarity})
            files[rel] = {
                "match": {"InstanceNumber": instance},
                "patient": patient.patient_id,
                "lung_mask": mask_path.relative_to(root).as_posix(),
                "actions": actions,
            }
            planted_values |= {a["original"] for a in actions if a.get("action") != "retained" and a.get("original")}
        if junk:
            notes = root / "input" / patient.patient_id / f"{patient.patient_id}_notes.txt"
            notes.write_text(f"{patient.name} {patient.patient_id} called back\n", encoding="utf-8")
    if junk:
        (root / "input" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + patient.patient_id.encode("utf-16-le"))
    key = {
        "format": KEY_FORMAT,
        "config": {"options": ["retain_modified_dates"], "burned_in": "detect", "pseudonymise": True},
        "input": "input",
        "files": files,
        "planted": sorted(v for v in planted_values if len(v) >= 4),
    }
    return write_json_atomic(root / ANSWER_KEY_NAME, key)


def lung_area_blanked(answer_key: str | Path, boxes_by_instance: dict[int, list[dict]]) -> float:
    """Fraction of all lung-field pixels of the benchmark inside blanked boxes ({InstanceNumber: audit boxes})."""
    from PIL import Image

    key_path = Path(answer_key)
    key = json.loads(key_path.read_text(encoding="utf-8"))
    total = blanked = 0
    for entry in key["files"].values():
        lung = np.asarray(Image.open(key_path.parent / entry["lung_mask"])).astype(bool)
        covered = np.zeros_like(lung)
        for b in boxes_by_instance.get(int(entry["match"]["InstanceNumber"]), []):
            covered[b["y0"] : b["y1"], b["x0"] : b["x1"]] = True
        total += int(lung.sum())
        blanked += int((lung & covered).sum())
    return blanked / total if total else 0.0
