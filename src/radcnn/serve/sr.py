"""What the DICOM node sends back to the PACS: a Structured Report and a Secondary Capture heat map (highdicom).

Both objects join the ORIGINAL study (same patient, same StudyInstanceUID, taken from the received image by
highdicom), each in a new series, so a PACS files them beside the radiograph.

The SR is a TID 1500 Measurement Report (Comprehensive SR IOD): per label one measurement group with the
model's probability and the decision threshold as measurements, the decision as a qualitative evaluation
(Present / Absent), the model's name and version as the algorithm identification, and TEXT comments that say
"NOT FOR CLINICAL USE" and carry every warning of the prediction. radcnn's labels have no standard codes, so
they are coded in the private scheme `99RADCNN` (DICOM PS3.16 allows "99"-prefixed local schemes).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from radcnn.serve.heatmap import blended_rgb
from radcnn.serve.prediction import Prediction

NOT_FOR_CLINICAL_USE = "NOT FOR CLINICAL USE: research software (radcnn), not a medical device"
SCHEME = "99RADCNN"
MANUFACTURER = "radcnn"
PROCEDURE = hd.sr.CodedConcept("399208008", "SCT", "Plain chest X-ray")
PROBABILITY = hd.sr.CodedConcept("PROBABILITY", SCHEME, "Model probability")
THRESHOLD = hd.sr.CodedConcept("THRESHOLD", SCHEME, "Decision threshold")
SR_SERIES_NUMBER, SC_SERIES_NUMBER = 9901, 9902  # high numbers keep derived series after the acquired ones


@dataclass(frozen=True)
class ResultObjects:
    sr: Dataset
    secondary_capture: Dataset | None  # None when the prediction has no heat map or decoded image


# Type 2 attributes (present, possibly empty) of the Patient and General Study modules that highdicom copies from
# the received image into the results. Modalities leave some out; an empty value is what DICOM means by unknown.
_TYPE2_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip


def _with_type2(original: Dataset) -> Dataset:
    """A shallow copy of `original` with missing type 2 patient/study attributes present and empty."""
    # A new element dict: copy.copy and Dataset(original) share the original's, and would change it.
    completed = Dataset(dict(original.items()))
    if hasattr(original, "file_meta"):
        completed.file_meta = original.file_meta
    for keyword in _TYPE2_COPIED:
        if keyword not in completed:
            setattr(completed, keyword, None)
    return completed


def _finding(index: int, label: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(f"LABEL{index}", SCHEME, label[:64])


def _plain(text: str) -> str:
    """ASCII text: the SR inherits no character set, and many PACS show only the default repertoire."""
    text = text.replace("×", "x").replace("—", "-").replace("…", "...").replace("→", "->")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _comment(text: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=codes.DCM.Comment, value=_plain(text)[:1024], relationship_type="CONTAINS")


def build_sr(original: Dataset, prediction: Prediction) -> Dataset:
    """The Comprehensive SR (TID 1500) reporting `prediction` for the received image `original`."""
    model = prediction.model
    if model is None:
        raise ValueError("a prediction without model information cannot be reported")
    algorithm = hd.sr.AlgorithmIdentification(name=model.name[:64], version=model.version)
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["radcnn", model.name, model.version]),
        name=f"radcnn {model.name}"[:64],
        manufacturer_name=MANUFACTURER,
        model_name=model.architecture[:64],
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device, observer_identifying_attributes=device
        )
    )
    source = hd.sr.SourceImageForMeasurementGroup.from_source_image(original)
    groups = []
    for index, (label, probability) in enumerate(prediction.probabilities.items()):
        finding = _finding(index, label)
        measurements = [
            hd.sr.Measurement(name=PROBABILITY, value=probability, unit=codes.UCUM.NoUnits, algorithm_id=algorithm)
        ]
        if label in prediction.thresholds:
            measurements.append(
                hd.sr.Measurement(
                    name=THRESHOLD, value=prediction.thresholds[label], unit=codes.UCUM.NoUnits, algorithm_id=algorithm
                )
            )
        decision = codes.SCT.Present if prediction.decisions[label] else codes.SCT.Absent
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"radcnn {label}"[:64]),
            finding_type=finding,
            algorithm_id=algorithm,
            measurements=measurements,
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=finding, value=decision)],
            source_images=[source],
        )
        # TID 1501 lets a group hold TEXT evaluations: the disclaimer and the warnings go with every finding.
        group[0].ContentSequence.extend([_comment(NOT_FOR_CLINICAL_USE), *map(_comment, prediction.warnings)])
        groups.append(group)
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=PROCEDURE, imaging_measurements=groups
    )
    return hd.sr.ComprehensiveSR(
        evidence=[original],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description=_plain(f"radcnn {model.name} - NOT FOR CLINICAL USE")[:64],
        is_complete=True,
        is_final=False,  # nobody verified it: an algorithm's output is a preliminary result
    )


def _orientation(original: Dataset) -> tuple[str, str]:
    """The received image's PatientOrientation; without one, that of a PA chest film as displayed (L, F)."""
    value = original.get("PatientOrientation")
    if value is not None and len(value) == 2 and all(str(v) for v in value):
        return str(value[0]), str(value[1])
    return ("L", "F") if str(original.get("ViewPosition", "PA")).upper() != "AP" else ("R", "F")


def build_secondary_capture(original: Dataset, prediction: Prediction) -> Dataset | None:
    """An RGB Secondary Capture of the image with the heat map blended in and the disclaimer burned in."""
    if prediction.heatmap is None or prediction.image is None:
        return None
    model = prediction.model
    label = prediction.heatmap.label
    caption = (
        f"NOT FOR CLINICAL USE | {model.name if model else 'radcnn'} {model.version if model else ''} | "
        f"{label} p={prediction.probabilities.get(label, float('nan')):.3f} | {prediction.heatmap.method}"
    )
    pixels = blended_rgb(prediction.image, prediction.heatmap, caption=caption)
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=original,
        pixel_array=np.ascontiguousarray(pixels),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=_orientation(original),
        series_instance_uid=generate_uid(),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="radcnn heat map - NOT FOR CLINICAL USE",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    image.BurnedInAnnotation = "YES"  # the caption is in the pixels
    image.ImageComments = NOT_FOR_CLINICAL_USE
    return image


def build_results(original: Dataset, prediction: Prediction) -> ResultObjects:
    """Both result objects for a received image (missing type 2 patient/study attributes are sent empty)."""
    original = _with_type2(original)
    return ResultObjects(build_sr(original, prediction), build_secondary_capture(original, prediction))
