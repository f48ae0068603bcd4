"""The HTTP API: in-process through FastAPI's TestClient, and as a real `radcnn serve` process over loopback."""

from __future__ import annotations

import base64
import io
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radcnn.serve.api import ServeSettings, create_app
from radcnn.serve.predictor import Predictor

LIMIT = 256 * 1024
PATIENT_NAME, PATIENT_ID = "Kowalczyk^Henrietta", "PHI-4711-XYZ"


@pytest.fixture(scope="module")
def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor.from_path(run_dir)


@pytest.fixture(scope="module")
def client(predictor, run_dir, auth, token):
    app = create_app(predictor, run_dir=run_dir, settings=ServeSettings(max_upload_bytes=LIMIT, token=token))
    with TestClient(app) as client:  # runs the lifespan: the batcher starts and stops with it
        client.auth_headers = auth
        yield client


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def post(client, data: bytes, name: str = "image", params: str = "", headers=None):
    headers = client.auth_headers if headers is None else headers
    return client.post(f"/v1/predict{params}", files={"file": (name, data)}, headers=headers)


def test_health_needs_no_token_and_names_the_model(client, predictor):
    body = client.get("/v1/health").json()
    assert body["status"] == "ok" and body["version"] == predictor.info.version and body["model"] == "run"


def test_model_card_has_spec_thresholds_and_the_runs_evidence(client, predictor):
    card = client.get("/v1/model", headers=client.auth_headers).json()
    assert card["model"]["version"] == predictor.info.version
    assert card["labels"] == ["nodule"] and card["input"]["height"] == 48
    assert card["thresholds"]["nodule"] == pytest.approx(predictor.spec.thresholds[0])
    assert card["training_data"]["splits"][0]["split"] == "train"
    assert "not a medical device" in card["intended_use"]


def test_openapi_documents_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/health", "/v1/model", "/v1/predict"} <= set(paths)
    assert "413" in paths["/v1/predict"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_predict_dicom_matches_the_predictor_and_reports_everything(client, predictor, phantom_dicoms):
    path = phantom_dicoms[0]
    expected = predictor.predict_files([path])[0]
    response = post(client, path.read_bytes(), "study.dcm")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["probabilities"]["nodule"] == pytest.approx(expected.probabilities["nodule"], abs=1e-6)
    assert body["decisions"] == expected.decisions
    assert body["thresholds"]["nodule"] == pytest.approx(predictor.spec.thresholds[0])
    assert body["model"]["name"] == "run" and body["model"]["version"] == predictor.info.version
    assert body["warnings"] == [] and body["input"] == {"format": "dicom", "width": 64, "height": 64}
    assert "heatmap" not in body and "image" not in body


def test_heatmap_and_image_come_back_decodable(client, phantom_dicoms):
    body = post(client, phantom_dicoms[1].read_bytes(), params="?heatmap=1&image=1&method=gradcam_pp").json()
    overlay = Image.open(io.BytesIO(base64.b64decode(body["heatmap"]["png_base64"])))
    assert overlay.mode == "RGBA" and overlay.size == (48, 48)
    assert body["heatmap"]["method"] == "gradcam_pp" and body["heatmap"]["label"] == "nodule"
    alpha = np.asarray(overlay)[..., 3]
    assert alpha.max() == 255  # the map is scaled so its peak is fully opaque
    image = body["image"]
    pixels = np.frombuffer(base64.b64decode(image["data_base64"]), dtype="<u2")
    assert pixels.size == image["width"] * image["height"] == 64 * 64 and pixels.max() > pixels.min()


def test_format_is_sniffed_from_content_not_the_name(client, radiograph_12bit):
    gray = (radiograph_12bit >> 4).astype(np.uint8)
    png = png_bytes(gray)
    as_dcm = post(client, png, "misleading.dcm").json()
    assert as_dcm["input"]["format"] == "png"
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="JPEG", quality=95)
    assert post(client, buffer.getvalue(), "picture.png").json()["input"]["format"] == "jpeg"


def test_colour_and_ct_inputs_are_flagged_out_of_scope(client, write_dicom, radiograph_12bit):
    rgb = np.dstack([(radiograph_12bit >> 4).astype(np.uint8)] * 3)
    warnings = post(client, png_bytes(rgb, "RGB")).json()["warnings"]
    assert any("colour image" in w for w in warnings)
    ct = write_dicom(radiograph_12bit, "ct.dcm", Modality="CT", BitsStored=12)
    warnings = post(client, ct.read_bytes()).json()["warnings"]
    assert any("modality CT" in w for w in warnings)


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "missing bearer token"), ({"Authorization": "Bearer wrong-token-wrong-token"}, "invalid bearer token")],
)
def test_missing_or_wrong_token_is_401(client, phantom_dicoms, headers, detail, caplog, token):
    with caplog.at_level(logging.WARNING, logger="radcnn"):
        response = post(client, phantom_dicoms[0].read_bytes(), headers=headers)
    assert response.status_code == 401 and response.json()["detail"] == detail
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v1/model", headers=headers).status_code == 401
    assert any("bearer token" in r.getMessage() for r in caplog.records)
    assert token not in caplog.text


def test_bad_uploads_get_clear_4xx_and_the_server_keeps_serving(client, phantom_dicoms, caplog):
    dicom = phantom_dicoms[0].read_bytes()
    cases = {
        "empty": (b"", 400, "empty upload"),
        "text": (b"name,label\nx,1\n", 415, "expected a DICOM, PNG or JPEG"),
        "tiff": (b"II*\x00" + bytes(600), 415, "TIFF image"),
        "truncated dicom": (dicom[: len(dicom) // 2], 422, "cannot read the DICOM upload"),
        "header only": (dicom[:400], 422, "cannot read the DICOM upload"),
    }
    with caplog.at_level(logging.WARNING, logger="radcnn"):
        for name, (data, status, detail) in cases.items():
            response = post(client, data)
            assert response.status_code == status, (name, response.text)
            assert detail in response.json()["detail"], name
            assert client.get("/v1/health").status_code == 200
    assert sum(" → 4" in r.getMessage() for r in caplog.records) >= len(cases)
    assert post(client, dicom).status_code == 200


def test_bad_parameters_are_422(client, phantom_dicoms):
    dicom = phantom_dicoms[0].read_bytes()
    assert post(client, dicom, params="?heatmap=1&method=lime").status_code == 422
    response = post(client, dicom, params="?heatmap=1&label=effusion")
    assert response.status_code == 422 and "nodule" in response.json()["detail"]
    assert client.post("/v1/predict", headers=client.auth_headers).status_code == 422  # no file field at all


def test_oversized_uploads_are_413_declared_or_streamed(client):
    big = bytes(LIMIT + 1)
    response = post(client, big)
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for _ in range(LIMIT // 8192 + 2):
            yield b"\0" * 8192

    headers = {**client.auth_headers, "Content-Type": "multipart/form-data; boundary=x"}
    response = client.post("/v1/predict", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert client.get("/v1/health").status_code == 200


def test_patient_identifiers_never_reach_the_log(client, write_dicom, radiograph_12bit, caplog):
    path = write_dicom(
        radiograph_12bit, f"{PATIENT_NAME}_{PATIENT_ID}.dcm", PatientName=PATIENT_NAME, PatientID=PATIENT_ID,
        BitsStored=12, Modality="MR",  # a warning-producing input: warnings must not carry the header either
    )  # fmt: skip
    data = path.read_bytes()
    assert PATIENT_ID.encode() in data
    with caplog.at_level(logging.DEBUG):
        assert post(client, data, path.name, "?heatmap=1&image=1").status_code == 200
        assert post(client, data[: len(data) - 100], path.name).status_code == 422
        assert post(client, data, path.name, headers={}).status_code == 401
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records and "modality MR" in post(client, data, path.name).json()["warnings"][0]
    for identifier in (PATIENT_NAME, PATIENT_ID, "Kowalczyk", "Henrietta"):
        assert identifier not in logged


# --- the real server (radcnn serve, its own process) ----------------------------------------------------------


def test_real_server_authenticates_batches_and_keeps_serving(server, phantom_dicoms, auth):
    base, process = server
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/v1/model").status_code == 401
        assert http.get("/v1/model", headers=auth).json()["model"]["name"] == "run"
        assert http.get("/").headers.get("location", "").endswith("/viewer/") or http.get("/").status_code == 200
        assert "radcnn viewer" in http.get("/viewer/").text
        before = http.get("/v1/health").json()

        def one(i: int) -> int:
            path = phantom_dicoms[i % len(phantom_dicoms)]
            files = {"file": (f"{PATIENT_NAME}.dcm", path.read_bytes())}
            return http.post("/v1/predict", files=files, headers=auth).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(16)))
        assert statuses == [200] * 16
        assert http.post("/v1/predict", files={"file": ("x", bytes(2 << 20))}, headers=auth).status_code == 413
        assert http.post("/v1/predict", files={"file": ("x", b"%PDF-1.4")}, headers=auth).status_code == 415
        after = http.get("/v1/health").json()
    assert after["images_scored"] - before["images_scored"] == 16
    assert after["forward_passes"] - before["forward_passes"] < 16  # requests that arrived together shared a pass
    log = process.log()
    assert "→ 413" in log and "→ 415" in log and "request" in log
    assert PATIENT_NAME not in log and "Kowalczyk" not in log
