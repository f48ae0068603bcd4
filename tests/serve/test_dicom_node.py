"""The DICOM node: a real Orthanc PACS sends it a radiograph and receives the SR and heat map back (processes
started and stopped by PID, loopback ports chosen at run time); refusals and bad input checked in-process."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import ComputedRadiographyImageStorage, Verification

from radcnn.serve.dicom_node import CANNOT_UNDERSTAND, DicomNode, Peer
from radcnn.serve.predictor import Predictor

ORTHANC = Path("/usr/sbin/Orthanc")


def sr_values(dataset, values: dict | None = None) -> dict[str, object]:
    """Concept name → value over the whole SR tree (NUM: float, CODE: meaning, TEXT "Comment": list of texts)."""
    values = {} if values is None else values
    for item in dataset.get("ContentSequence", []):
        name = item.ConceptNameCodeSequence[0].CodeMeaning
        if item.ValueType == "NUM":
            values.setdefault(name, float(item.MeasuredValueSequence[0].NumericValue))
        elif item.ValueType == "CODE":
            values.setdefault(name, item.ConceptCodeSequence[0].CodeMeaning)
        elif item.ValueType == "TEXT" and name == "Comment":
            values.setdefault(name, []).append(str(item.TextValue))
        elif item.ValueType == "TEXT":
            values.setdefault(name, str(item.TextValue))
        sr_values(item, values)
    return values


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, free_port, process):
    """Orthanc with a generated configuration: loopback HTTP and DICOM ports, storage in tmp, radcnn's node as a
    modality. Its binary comes from Debian's `orthanc` package, which `make test` installs when missing."""
    assert ORTHANC.is_file(), f"{ORTHANC} is missing: install Debian's orthanc package (make test does)"
    work = tmp_path_factory.mktemp("orthanc")
    ports = {"http": free_port(), "dicom": free_port(), "node": free_port()}
    config = {
        "Name": "radcnn-test",
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "HttpPort": ports["http"],
        "DicomPort": ports["dicom"],
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomModalities": {"radcnn": ["RADCNN", "127.0.0.1", ports["node"]]},
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
    }
    (work / "orthanc.json").write_text(json.dumps(config, indent=2))
    server = process([str(ORTHANC), str(work / "orthanc.json")], work / "orthanc.log")
    base = f"http://127.0.0.1:{ports['http']}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/system", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        server.wait_until(answers, "REST API", timeout=60)
        yield base, ports, server
    finally:
        server.stop()


def test_orthanc_sends_a_radiograph_and_gets_the_sr_and_heat_map_back(
    orthanc, run_dir, phantom_dicoms, tmp_path, process, radcnn_command
):
    base, ports, _ = orthanc
    node = process(
        radcnn_command(
            "dicom-node", str(run_dir), "--ae-title", "RADCNN", "--port", str(ports["node"]),
            "--reply-to", f"127.0.0.1:{ports['dicom']}:ORTHANC",
        ),
        tmp_path / "node.log",
    )  # fmt: skip
    try:
        node.wait_until(lambda: "listening" in node.log(), "listening socket")
        http = httpx.Client(base_url=base, timeout=60)
        assert http.post("/modalities/radcnn/echo", json={}).status_code == 200  # Orthanc → node C-ECHO
        path = phantom_dicoms[0]
        uploaded = http.post("/instances", content=path.read_bytes()).json()
        assert uploaded["Status"] == "Success"
        stored = http.post("/modalities/radcnn/store", content=uploaded["ID"]).json()
        assert stored["FailedInstancesCount"] == 0 and stored["InstancesCount"] == 1

        deadline, series = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            series = http.get(f"/studies/{uploaded['ParentStudy']}/series").json()
            if len(series) >= 3:
                break
            time.sleep(0.3)
        modalities = sorted(s["MainDicomTags"].get("Modality") for s in series)
        assert modalities == ["CR", "OT", "SR"], f"series in Orthanc: {modalities}\nnode log:\n{node.log()}"
        by_modality = {s["MainDicomTags"]["Modality"]: s for s in series}
        files = {
            m: pydicom.dcmread(io.BytesIO(http.get(f"/instances/{by_modality[m]['Instances'][0]}/file").content))
            for m in ("SR", "OT")
        }
    finally:
        code = node.stop()
    original = pydicom.dcmread(path)
    expected = Predictor.from_path(run_dir).predict_files([path])[0]
    sr, sc = files["SR"], files["OT"]
    for result in (sr, sc):
        assert result.StudyInstanceUID == original.StudyInstanceUID
        assert result.SeriesInstanceUID != original.SeriesInstanceUID
    values = sr_values(sr)
    assert values["Model probability"] == pytest.approx(expected.probabilities["nodule"], abs=1e-5)
    assert values["Decision threshold"] == pytest.approx(expected.thresholds["nodule"], abs=1e-6)
    assert values["nodule"] == ("Present" if expected.decisions["nodule"] else "Absent")
    assert values["Algorithm Name"] == "run" and values["Algorithm Version"] == expected.model.version
    assert any("NOT FOR CLINICAL USE" in c for c in values["Comment"])
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and sc.PhotometricInterpretation == "RGB"
    log = node.log()
    assert code == 0 and "SR and heat map stored" in log and "1 results delivered, 0 failed" in log
    for identifier in (str(original.PatientName), str(original.PatientID), original.StudyInstanceUID):
        assert identifier not in log


# --- in-process: refusals and bad input -----------------------------------------------------------------------


class RecordingPacs:
    """A pynetdicom storage SCP standing in for a PACS that answers every C-STORE with `status`."""

    def __init__(self, status: int):
        self.status, self.received = status, []
        ae = AE(ae_title="PACS")
        ae.add_supported_context("1.2.840.10008.5.1.4.1.1.88.33", ExplicitVRLittleEndian)
        ae.add_supported_context("1.2.840.10008.5.1.4.1.1.7", ExplicitVRLittleEndian)
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]

    def _store(self, event):
        self.received.append(event.dataset.SOPClassUID)
        return self.status


@pytest.fixture
def node_factory(run_dir):
    predictor = Predictor.from_path(run_dir)
    started = []

    def make(reply_port: int) -> DicomNode:
        node = DicomNode(predictor, reply_to=Peer("127.0.0.1", reply_port, "PACS"), port=0, timeout_s=5)
        node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


def scu(ae_title: str, node: DicomNode):
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(Verification)
    ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
    return ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)


def test_unknown_calling_ae_title_is_rejected_and_logged(node_factory, caplog, free_port):
    node = node_factory(free_port())
    with caplog.at_level(logging.WARNING, logger="radcnn"):
        assoc = scu("STRANGER", node)
        assert assoc.is_rejected
    assert "rejected an association from AE title 'STRANGER'" in caplog.text
    assoc = scu("PACS", node)
    assert assoc.is_established and assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_truncated_image_gets_a_failure_status_and_the_node_keeps_running(node_factory, phantom_dicoms, caplog):
    pacs = RecordingPacs(0x0000)
    node = node_factory(pacs.port)
    dataset = pydicom.dcmread(phantom_dicoms[0])
    dataset.PixelData = dataset.PixelData[:100]  # cut short: Rows × Columns promise far more
    good = pydicom.dcmread(phantom_dicoms[1])
    try:
        assoc = scu("PACS", node)
        with caplog.at_level(logging.WARNING, logger="radcnn"):
            status = assoc.send_c_store(dataset)
        assert status.Status == CANNOT_UNDERSTAND and "cannot read" in status.ErrorComment
        assert assoc.send_c_store(good).Status == 0x0000
        assoc.release()
        node.wait_idle()
    finally:
        pacs.server.shutdown()
    assert "image 1 from PACS refused (0xC000)" in caplog.text
    assert node.refused == 1 and node.delivered == 1
    assert pacs.received == ["1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.7"]


@pytest.mark.parametrize("pacs_state", ["refuses objects", "down"])
def test_a_pacs_that_refuses_the_reply_is_logged_and_the_node_keeps_running(
    node_factory, phantom_dicoms, caplog, pacs_state, free_port
):
    pacs = RecordingPacs(0xA700) if pacs_state == "refuses objects" else None
    node = node_factory(pacs.port if pacs else free_port())
    try:
        with caplog.at_level(logging.INFO, logger="radcnn"):
            for path in phantom_dicoms[:2]:
                assoc = scu("PACS", node)
                assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0x0000  # received fine either way
                assoc.release()
            node.wait_idle()
        assoc = scu("PACS", node)
        assert assoc.send_c_echo().Status == 0x0000  # still answering
        assoc.release()
    finally:
        if pacs:
            pacs.server.shutdown()
    assert node.failed == 2 and node.delivered == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name.startswith("radcnn")]
    if pacs:  # each object is tried and its refusal logged
        assert [e.split(": ", 1)[1] for e in errors] == [
            f"PACS PACS@127.0.0.1:{pacs.port} refused the {kind} with status 0xA700"
            for _ in range(2)
            for kind in ("SR", "secondary capture")
        ]
    else:
        assert len(errors) == 2 and all("did not accept an association" in e for e in errors), errors
