"""The HTTP API (FastAPI): health, the model card, prediction with optional heat maps, and the browser viewer.

    GET  /v1/health              liveness, model name/version, batching counters (no token needed)
    GET  /v1/model               the model card as JSON
    POST /v1/predict             multipart field ``file`` (DICOM, PNG or JPEG, recognised by content)
                                 ?heatmap=1[&method=gradcam|gradcam_pp|integrated_gradients][&label=NAME]
                                 ?image=1 adds the decoded image (uint16, for the viewer's window/level)
    GET  /viewer/                the browser viewer (static files; it calls the endpoints above)
    GET  /docs, /openapi.json    interactive OpenAPI documentation

Requests that arrive together are scored in one forward pass (`radcnn.serve.batching`). Bad input gets a 4xx
with a message and a log line, never a 500: 400 empty upload, 401 missing/wrong token, 413 too large, 415 not
a DICOM/PNG/JPEG, 422 an image that cannot be decoded (truncated DICOM, no pixel data) or a bad parameter.
No file name, header value or pixel of an upload is ever written to the log (`radcnn.serve.limits`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from radcnn.data.readers.dispatch import sniff_format
from radcnn.errors import ImageReadError, RadcnnError
from radcnn.serve.auth import BearerToken
from radcnn.serve.batching import MicroBatcher
from radcnn.serve.heatmap import HEATMAP_METHODS, overlay_png
from radcnn.serve.limits import RequestLog, UploadLimit, loggable
from radcnn.serve.model_card import build_model_card
from radcnn.serve.predictor import Decoded, Predictor

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("dicom", "png", "jpeg")
UPLOAD_NAME = "upload"  # what errors and warnings call the file: the client's file name may hold a patient's name


@dataclass(frozen=True)
class ServeSettings:
    max_upload_bytes: int = 32 * 2**20
    max_batch: int = 16
    max_wait_ms: float = 5.0
    token: str | None = None  # None: no authentication (loopback use only)


class ModelOut(BaseModel):
    name: str
    version: str = Field(description="first 12 hex digits of SHA-256 over the weights")
    architecture: str
    labels: list[str]
    radcnn_version: str


class HeatmapOut(BaseModel):
    method: str
    label: str
    png_base64: str = Field(
        description="RGBA PNG at the model's input size; alpha = evidence (stretch it over the image)"
    )


class ImageOut(BaseModel):
    width: int
    height: int
    encoding: Literal["uint16le"] = "uint16le"
    data_base64: str = Field(description="row-major display intensities, 0 = black, 65535 = white")


class InputOut(BaseModel):
    format: str
    width: int
    height: int


class PredictionOut(BaseModel):
    probabilities: dict[str, float]
    decisions: dict[str, bool]
    thresholds: dict[str, float]
    model: ModelOut
    warnings: list[str] = Field(description="reader notes and out-of-distribution warnings; read them")
    input: InputOut
    heatmap: HeatmapOut | None = None
    image: ImageOut | None = None


def _image_out(image: np.ndarray) -> ImageOut:
    values = (np.clip(image, 0.0, 1.0) * 65535).round().astype("<u2")
    return ImageOut(width=image.shape[1], height=image.shape[0], data_base64=base64.b64encode(values).decode())


def create_app(predictor: Predictor, *, run_dir: Path | None = None, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    batcher = MicroBatcher(
        predictor.predict_batch, max_batch=settings.max_batch, max_wait_s=settings.max_wait_ms / 1000
    )
    card = build_model_card(predictor, run_dir)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="radcnn",
        version=predictor.info.radcnn_version,
        summary="Chest radiograph classification for research. Not a medical device; not for clinical use.",
        lifespan=lifespan,
    )
    app.state.predictor, app.state.batcher = predictor, batcher
    auth = [Depends(BearerToken(settings.token))]
    labels = tuple(predictor.spec.label_names)

    @app.exception_handler(StarletteHTTPException)
    async def _logged_http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code >= 400:
            log.warning("%s %s → %d: %s", request.method, request.url.path, exc.status_code, loggable(exc.detail))
        return await http_exception_handler(request, exc)

    @app.get("/v1/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": predictor.info.name,
            "version": predictor.info.version,
            "backend": predictor.backend,
            "forward_passes": len(batcher.batch_sizes),
            "images_scored": int(sum(batcher.batch_sizes)),
        }

    @app.get("/v1/model", tags=["model"], dependencies=auth)
    async def model_card() -> dict[str, Any]:
        return card

    @app.post(
        "/v1/predict",
        tags=["model"],
        dependencies=auth,
        response_model=PredictionOut,
        response_model_exclude_none=True,
        responses={s: {"description": d} for s, d in _ERRORS.items()},
    )
    async def predict(
        file: UploadFile = File(..., description="a DICOM, PNG or JPEG file (the content decides, not the name)"),
        heatmap: bool = Query(False, description="add a heat-map overlay (PNG, base64)"),
        method: Literal[HEATMAP_METHODS] = Query("gradcam", description="heat-map method"),
        label: str | None = Query(None, description="label to explain (default: the most probable)"),
        image: bool = Query(False, description="add the decoded image (for the viewer)"),
    ) -> PredictionOut:
        if label is not None and label not in labels:
            raise HTTPException(422, f"unknown label {label!r}; this model's labels: {', '.join(labels)}")
        data = await file.read()
        if not data:
            raise HTTPException(400, "empty upload: the 'file' field holds no bytes")
        fmt = sniff_format(Path(UPLOAD_NAME), data[:512])
        if fmt not in ACCEPTED_FORMATS:
            what = f"a {fmt.upper()} image" if fmt else f"not an image (starts with {data[:8]!r})"
            raise HTTPException(415, f"the upload is {what}; expected a DICOM, PNG or JPEG file")
        try:
            decoded: Decoded = await run_in_threadpool(predictor.decode_bytes, data, UPLOAD_NAME, keep_image=image)
        except ImageReadError as exc:
            raise HTTPException(422, f"cannot read the {fmt.upper()} upload: {exc.reason}") from None
        row = await batcher.submit(decoded.input)
        maps = None
        if heatmap:
            maps = await run_in_threadpool(predictor.heatmaps, decoded.input[None], method, label)
        result = predictor.result(decoded, row, maps[0] if maps else None)
        body = result.as_dict()
        out = PredictionOut(
            probabilities=body["probabilities"],
            decisions=body["decisions"],
            thresholds=body["thresholds"],
            model=ModelOut(**body["model"]),
            warnings=body["warnings"],
            input=InputOut(format=fmt, width=decoded.meta.shape[1], height=decoded.meta.shape[0]),
        )
        if result.heatmap is not None:
            png = await run_in_threadpool(overlay_png, result.heatmap)
            out.heatmap = HeatmapOut(
                method=result.heatmap.method, label=result.heatmap.label, png_base64=base64.b64encode(png).decode()
            )
        if result.image is not None:
            out.image = await run_in_threadpool(_image_out, result.image)
        return out

    @app.exception_handler(RadcnnError)
    async def _radcnn_error(request: Request, exc: RadcnnError):
        return await _logged_http_error(request, HTTPException(422, str(exc)))

    static = resources.files("radcnn.serve") / "static"
    app.mount("/viewer", StaticFiles(directory=str(static), html=True), name="viewer")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/viewer/")

    # Added last = outermost: the request log sees every response, including the size limit's 413.
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestLog)
    return app


_ERRORS = {
    400: "empty upload",
    401: "missing or wrong bearer token",
    413: "upload larger than the server's limit",
    415: "not a DICOM, PNG or JPEG file",
    422: "the image cannot be decoded (e.g. a truncated DICOM), or a bad parameter",
}
