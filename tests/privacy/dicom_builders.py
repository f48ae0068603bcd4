"""Synthetic DICOM objects for the privacy tests: small radiographs, and one object with every Table E.1-1
attribute filled with a unique planted identifier (also inside nested sequences and private blocks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radcnn.privacy.profile import annex_e_profile

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PLANT_ROOT = "1.2.826.0.1.3680043.9.7777."  # every planted UID starts with this


def make_image(
    *,
    patient_id: str = "MRN0012345",
    patient_name: str = "Doe^Jane",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    study_date: str = "20210305",
    modality: str = "DX",
    burned_in: str | None = "NO",
    rows: int = 16,
    cols: int = 20,
    seed: int = 0,
) -> Dataset:
    """A small valid DX (or CT) image with a few identifying attributes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DX_STORAGE if modality == "DX" else CT_STORAGE
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID, ds.PatientName = patient_id, patient_name
    ds.PatientBirthDate, ds.PatientSex = "19601224", "F"
    ds.StudyDate, ds.SeriesDate, ds.AcquisitionDate, ds.ContentDate = study_date, study_date, study_date, study_date
    ds.StudyTime, ds.ContentTime = "101500", "101512.25"
    ds.AccessionNumber, ds.StudyID = "ACC998877", "S1"
    ds.InstitutionName, ds.ReferringPhysicianName = "St Elsewhere Hospital", "House^Gregory"
    ds.StudyDescription = f"CHEST PA for {patient_name.replace('^', ' ')} MRN {patient_id}"
    ds.Modality, ds.Manufacturer = modality, "ACME"
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = np.random.default_rng(seed).integers(1, 4096, size=(rows, cols), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


class Planter:
    """Hands out unique planted values; remembers every planted text token and every planted top-level value."""

    def __init__(self) -> None:
        self.n = 0
        self.tokens: list[str] = []

    def token(self) -> str:
        self.n += 1
        token = f"PLANT{self.n:04d}X"
        self.tokens.append(token)
        return token

    def value(self, vr: str):
        if vr in ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"):
            return self.token()
        if vr == "UR":
            return f"http://example.org/{self.token()}"
        if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            raw = self.token().encode()
            return raw + b"\x00" * (len(raw) % 2)
        self.n += 1
        n = self.n
        numbers = {
            "UI": f"{PLANT_ROOT}{n}",
            "DA": (dt.date(1971, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d"),
            "DT": (dt.date(1972, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d") + "101010.5",
            "TM": f"{(n // 60) % 24:02d}{n % 60:02d}17.123",
            "DS": f"{n}.125",
            "IS": str(1000 + n),
            "AS": f"{n % 999:03d}Y",
            "FL": float(n) + 0.5,
            "FD": float(n) + 0.5,
        }
        if vr in numbers:
            return numbers[vr]
        if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
            return n
        raise ValueError(f"no planted value for VR {vr}")


def _vr(tag: int) -> str:
    return dictionary_VR(tag).split(" or ")[0]


def _private_block(ds: Dataset, planter: Planter, group: int = 0x0009, nested: bool = True) -> None:
    block = ds.private_block(group, planter.token(), create=True)
    block.add_new(0x01, "LO", planter.token())
    block.add_new(0x02, "UN", planter.token().encode())
    if nested:
        inner = Dataset()
        inner.add_new(0x00100010, "PN", planter.token())
        _private_block(inner, planter, 0x0011, nested=False)
        block.add_new(0x03, "SQ", Sequence([inner]))


def _nested_item(planter: Planter, depth: int) -> Dataset:
    """An item with table attributes, a private block and (until depth 0) a nested untabled sequence."""
    item = Dataset()
    item.PersonName = planter.token()  # (0040,A123) D
    item.InstitutionName = planter.token()  # (0008,0080) X/Z/D
    item.OtherPatientIDs = planter.token()  # (0010,1000) X
    item.ReferencedSOPInstanceUID = planter.value("UI")  # (0008,1155) U
    item.ReferencedSOPClassUID = CT_STORAGE
    _private_block(item, planter, nested=depth > 0)
    if depth > 0:
        item.AnatomicRegionSequence = Sequence([_nested_item(planter, depth - 1)])  # not in the table
    return item


def planted_dataset() -> tuple[Dataset, Planter, dict[int, object]]:
    """Every Table E.1-1 attribute present with a unique planted value, plus nested sequences and private
    blocks. Returns the dataset, the planter (its tokens) and the top-level planted values by tag."""
    ds = make_image(modality="CT", patient_id="MRNPLANTED", patient_name="Planted^Patient")
    planter = Planter()
    values: dict[int, object] = {}
    for rule in annex_e_profile().rows:
        if rule.tag == "ggggeeee":
            continue
        tag = int(rule.tag.replace("x", "0"), 16)
        if rule.tag.startswith("50xx"):
            tag = 0x50002500  # Curve Label (LO) stands for the whole curve group
        if tag >> 16 == 0x0000:
            continue  # command-set elements cannot be written to a file (pydicom refuses); tested in memory
        if tag >> 16 == 0x0002:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID  # planted below through SOPInstanceUID
            continue
        vr = _vr(tag)
        if vr == "SQ":
            ds.add_new(tag, "SQ", Sequence([_nested_item(planter, depth=1)]))
            continue
        value = planter.value(vr)
        ds.add_new(tag, vr, value)
        values[tag] = value
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = values[0x00080018]
    # Curves and overlays: a whole group each.
    ds.add_new(0x50003000, "OB", planter.value("OB"))
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    # Private blocks at the top level, in two groups, one with a nested sequence holding another private block.
    _private_block(ds, planter, 0x0009)
    _private_block(ds, planter, 0x0029)
    # Untabled sequences two levels deep carrying table attributes and private blocks.
    ds.AnatomicRegionSequence = Sequence([_nested_item(planter, depth=2)])
    return ds, planter, values
