"""Encoding phantom images as real DICOM (CR or DX IOD) and 16-bit PNG files.

The DICOM files look like a hospital's: a CR Image Storage or DX Image Storage – For Presentation object with
the site's photometric interpretation and bit depth, a modality LUT (rescale) and a VOI window that maps the
stored range back to the display image, a realistic (fake) patient, study and equipment description, and UIDs
derived deterministically from the seed so the same seed writes byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from radcnn.phantom.anatomy import FIELD_OF_VIEW_MM
from radcnn.phantom.generator import PatientSpec
from radcnn.phantom.sites import SiteProfile

SOP_CLASSES = {"CR": ComputedRadiographyImageStorage, "DX": DigitalXRayImageStorageForPresentation}
SYNTHETIC_NOTE = "SYNTHETIC image from the radcnn phantom; no real patient"


def display_to_stored(display: np.ndarray, site: SiteProfile) -> np.ndarray:
    """Quantise a display image ([0, 1], bone bright) to the site's stored values (uint16).

    The display range occupies the site's `stored_limits`; MONOCHROME1 stores it inverted (bone = low values)
    within the same limits, so the same window maps it back.
    """
    lo, hi = site.stored_limits
    values = np.rint(lo + np.clip(display, 0.0, 1.0) * (hi - lo))
    if site.photometric == "MONOCHROME1":
        values = (lo + hi) - values
    return values.astype(np.uint16)


def stored_window(site: SiteProfile) -> tuple[float, float]:
    """(WindowCenter, WindowWidth) whose DICOM LINEAR function maps stored_limits exactly onto the output range."""
    lo, hi = site.stored_limits
    return (lo + hi) / 2.0 + 0.5, float(hi - lo + 1)


def study_uids(patient: PatientSpec, study: int) -> dict[str, str]:
    """Study/Series/SOP Instance UIDs: unique per image, identical for the same seed (hashed entropy)."""
    base = [f"radcnn-phantom seed={patient.seed}", f"patient={patient.index}", f"study={study}"]
    return {
        "study": generate_uid(entropy_srcs=[*base, "study"]),
        "series": generate_uid(entropy_srcs=[*base, "series"]),
        "instance": generate_uid(entropy_srcs=[*base, "instance"]),
    }


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def build_dataset(display: np.ndarray, patient: PatientSpec, study: int) -> Dataset:
    """The DICOM dataset (with file meta) for one rendered study."""
    site, spec = patient.site, patient.studies[study]
    uids = study_uids(patient, study)
    sop_class = SOP_CLASSES[site.modality]
    stored = display_to_stored(display, site)
    date, time = spec.date.strftime("%Y%m%d"), spec.time.strftime("%H%M%S")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uids["instance"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "RADCNN_PHANTOM"

    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uids["instance"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
    ds.AccessionNumber = spec.accession
    ds.Modality = site.modality
    if site.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = site.manufacturer
    ds.InstitutionName = site.institution
    ds.ReferringPhysicianName = "WELBY^MARCUS"
    ds.StationName = site.station_name
    ds.StudyDescription = "XR CHEST PA"
    ds.SeriesDescription = "CHEST PA"
    ds.ManufacturerModelName = site.model_name

    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = patient.sex
    ds.PatientAge = f"{spec.age:03d}Y"

    ds.BodyPartExamined = "CHEST"
    ds.KVP = f"{site.kvp:g}"
    ds.DistanceSourceToDetector = "1800"
    ds.Exposure = str(int(round(2.5 * spec.exposure)) or 1)  # mAs: the per-study dose variation
    spacing = f"{FIELD_OF_VIEW_MM / display.shape[0]:.4f}"
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.DeviceSerialNumber = f"{site.station_name}-0001"
    ds.SoftwareVersions = "radcnn-phantom 1"
    ds.ViewPosition = "PA"
    if site.modality == "DX":
        ds.DetectorType = site.detector_type
        ds.ImageLaterality = "U"
        ds.AnatomicRegionSequence = DicomSequence([_code("43799004", "SCT", "Chest")])
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if site.photometric == "MONOCHROME1" else -1
        ds.PresentationLUTShape = "INVERSE" if site.photometric == "MONOCHROME1" else "IDENTITY"
        ds.RescaleType = "US"
        ds.BurnedInAnnotation = "NO"
    else:
        ds.PlateType = site.detector_type

    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids["study"], uids["series"]
    ds.StudyID = f"{study + 1}"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.PatientOrientation = ["L", "F"]  # rows run to the patient's left, columns to the feet: a PA display

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = site.photometric
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [spacing, spacing]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, site.bits_stored, site.bits_stored - 1
    ds.PixelRepresentation = 0
    center, width = stored_window(site)
    ds.WindowCenter, ds.WindowWidth = f"{center:g}", f"{width:g}"
    ds.WindowCenterWidthExplanation = "FULL"
    ds.VOILUTFunction = "LINEAR"
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    ds.LossyImageCompression = "00"
    ds.ImageComments = SYNTHETIC_NOTE
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_dicom(path: str | Path, display: np.ndarray, patient: PatientSpec, study: int) -> Path:
    """Write one study as a DICOM Part 10 file (explicit VR little endian) and return its path."""
    path = Path(path)
    pydicom.dcmwrite(path, build_dataset(display, patient, study), enforce_file_format=True)
    return path


def write_png16(path: str | Path, display: np.ndarray) -> Path:
    """Write a display image as 16-bit grayscale PNG (0 = black, 65535 = white; bone bright)."""
    values = np.rint(np.clip(display, 0.0, 1.0) * 65535.0).astype(np.uint16)
    path = Path(path)
    Image.fromarray(values).save(path, format="PNG")
    return path


def write_mask_png(path: str | Path, mask: np.ndarray) -> Path:
    """Write an 8-bit mask PNG (instance ids or 0/255)."""
    path = Path(path)
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8)).save(path, format="PNG")
    return path
