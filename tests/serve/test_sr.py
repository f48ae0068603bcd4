"""The node's result objects: a TID 1500 Comprehensive SR and a Secondary Capture, both in the original study."""

from __future__ import annotations

import io

import highdicom as hd
import pydicom
import pytest

from radcnn.serve.predictor import Predictor
from radcnn.serve.sr import NOT_FOR_CLINICAL_USE, build_results


def sr_items(dataset) -> list[tuple[str, object]]:
    """(concept name meaning, value) of every content item, depth first: NUM → float, CODE → meaning, TEXT → text."""
    found = []
    for item in dataset.get("ContentSequence", []):
        name = item.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in item else ""
        if item.ValueType == "NUM":
            found.append((name, float(item.MeasuredValueSequence[0].NumericValue)))
        elif item.ValueType == "CODE":
            found.append((name, item.ConceptCodeSequence[0].CodeMeaning))
        elif item.ValueType == "TEXT":
            found.append((name, str(item.TextValue)))
        found.extend(sr_items(item))
    return found


@pytest.fixture(scope="module")
def reported(run_dir, phantom_dicoms):
    predictor = Predictor.from_path(run_dir)
    path = phantom_dicoms[2]
    prediction = predictor.predict_bytes(path.read_bytes(), "received", heatmap="gradcam", keep_image=True)
    return pydicom.dcmread(path), prediction, build_results(pydicom.dcmread(path), prediction)


def roundtrip(dataset):
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_sr_reports_probability_threshold_decision_model_and_disclaimer(reported):
    original, prediction, results = reported
    sr = roundtrip(results.sr)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR Storage
    items = sr_items(sr)
    values = dict(items)
    assert values["Model probability"] == pytest.approx(prediction.probabilities["nodule"], abs=1e-6)
    assert values["Decision threshold"] == pytest.approx(prediction.thresholds["nodule"], abs=1e-6)
    assert values["nodule"] == ("Present" if prediction.decisions["nodule"] else "Absent")
    assert values["Algorithm Name"] == "run" and values["Algorithm Version"] == prediction.model.version
    assert ("Comment", NOT_FOR_CLINICAL_USE) in items
    assert "NOT FOR CLINICAL USE" in sr.SeriesDescription
    # the same patient and study, a new series
    assert sr.StudyInstanceUID == original.StudyInstanceUID and sr.PatientID == original.PatientID
    assert sr.SeriesInstanceUID != original.SeriesInstanceUID
    # highdicom reads it back as a TID 1500 measurement report
    report = hd.sr.ComprehensiveSR.from_dataset(sr).content
    (group,) = report.get_image_measurement_groups()
    assert group.finding_type.meaning == "nodule"
    assert [m.value for m in group.get_measurements()][0] == pytest.approx(prediction.probabilities["nodule"], abs=1e-6)
    assert report.get_observer_contexts()[0].observer_type == hd.sr.CodedConcept("121007", "DCM", "Device")


def test_sr_carries_every_warning(run_dir, write_dicom, radiograph_12bit):
    from pydicom.uid import generate_uid

    path = write_dicom(
        radiograph_12bit, "ct.dcm", Modality="CT", BitsStored=12, StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(), PatientID="P1", PatientName="Test^Case",
    )  # fmt: skip
    prediction = Predictor.from_path(run_dir).predict_bytes(path.read_bytes(), "ct", heatmap="gradcam", keep_image=True)
    assert prediction.warnings
    received = pydicom.dcmread(path)  # no PatientBirthDate, StudyDate, ...: sent empty, the received one untouched
    texts = [value for name, value in sr_items(build_results(received, prediction).sr) if name == "Comment"]
    assert any("modality CT" in text for text in texts)
    assert "PatientBirthDate" not in received


def test_secondary_capture_is_an_rgb_overlay_in_the_same_study(reported):
    original, prediction, results = reported
    sc = roundtrip(results.secondary_capture)
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and sc.PhotometricInterpretation == "RGB"
    assert sc.StudyInstanceUID == original.StudyInstanceUID and sc.SeriesInstanceUID != original.SeriesInstanceUID
    assert sc.SeriesInstanceUID != results.sr.SeriesInstanceUID
    assert sc.BurnedInAnnotation == "YES" and "NOT FOR CLINICAL USE" in sc.SeriesDescription
    pixels = sc.pixel_array
    assert pixels.shape == (*prediction.image.shape, 3)
    colour = (pixels[..., 0].astype(int) - pixels[..., 2]).std()
    assert colour > 1  # the heat map is blended in (a gray image has equal channels)
