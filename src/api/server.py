"""The local inference API: FastAPI served by uvicorn on 127.0.0.1 only.

Every request needs `Authorization: Bearer <token>` (a random token printed when the server
starts). Bad input gets a 4xx with a JSON `{"error": ..., "hint": ...}`, never a 500:
not an image, a body over the size limit, an unknown model or frame, a wrong token.
Models load once each, through the model manager's verification (sha256, trusted pickles),
and one request at a time runs per model (ultralytics predictors are not thread-safe).
"""
from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from src.api.limits import BodyTooLarge, Gate, too_large_json
from src.db import frames as frames_repo
from src.db import runs as runs_repo
from src.db.project import Project
from src.errors import LabelLoopError, ModelError, ModelIntegrityError, UntrustedModelError
from src.training.inference.predictor import Predictor, check_thresholds, create_predictor
from src.training.inference.results import Prediction
from src.training.models import ModelManager

HOST = "127.0.0.1"
MAX_BODY_BYTES = 20 * 1024 * 1024
FINISHED = ("completed", "cancelled", "failed")


class ApiError(Exception):
    def __init__(self, status: int, error: str, hint: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.hint = status, error, hint


class _Models:
    """Verified predictors by version id, loaded on first use; one lock per model."""

    def __init__(self, project_root: Path, device: str) -> None:
        self.root, self.device = project_root, device
        self._lock = threading.Lock()
        self._loaded: dict[int, tuple[Predictor, threading.Lock, str]] = {}
        self._project: Project | None = None
        self.db_lock = threading.RLock()     # one connection, one statement at a time

    def project(self) -> Project:
        """The server's connection to the project (opened once; use it under db_lock)."""
        with self.db_lock:
            if self._project is None:
                self._project = Project.open(self.root, create=False)
            return self._project

    def version(self, model_id: int):
        try:
            with self.db_lock:
                return ModelManager(self.project()).get(model_id)
        except ModelError as exc:
            raise ApiError(404, f"no model version {model_id}", "GET /models lists them") from exc

    def predictor(self, model_id: int) -> tuple[Predictor, threading.Lock, str]:
        with self._lock:
            if model_id not in self._loaded:
                version = self.version(model_id)
                with self.db_lock:
                    predictor = create_predictor(version, project=self.project(),
                                                 device=self.device)
                self._loaded[model_id] = (predictor, threading.Lock(), version.task)
            return self._loaded[model_id]


def create_app(project_root: str | Path, token: str, *, device: str = "auto",
               max_body_bytes: int = MAX_BODY_BYTES):
    """The ASGI app behind its gate (token, then body size)."""
    models = _Models(Path(project_root), device)
    app = FastAPI(title="LabelLoop inference API", docs_url=None, redoc_url=None,
                  openapi_url=None)
    _install_errors(app)
    _model_routes(app, models)
    _run_routes(app, models)
    return Gate(app, token, max_body_bytes)


def _model_routes(app: FastAPI, models: _Models) -> None:
    @app.get("/models")
    def list_models():
        with models.db_lock:
            return [_version_json(v) for v in ModelManager(models.project()).list()]

    @app.get("/models/{model_id}")
    def get_model(model_id: int):
        return _version_json(models.version(model_id))

    @app.post("/models/{model_id}/predict")
    async def predict(model_id: int, request: Request):
        form = await _form(request)
        conf = _number(form, request, "conf", 0.25)
        iou = _number(form, request, "iou", 0.7)
        check_thresholds(conf, iou)
        upload = form.get("image")
        raw = await upload.read() if hasattr(upload, "read") else None
        frame_id = form.get("frame_id") or request.query_params.get("frame_id")
        return await run_in_threadpool(_predict, models, model_id, raw, frame_id, conf, iou)


def _predict(models: _Models, model_id: int, raw: bytes | None, frame_id, conf: float,
             iou: float) -> dict:
    image = _image(models, raw, frame_id)
    predictor, lock, _ = models.predictor(model_id)
    with lock:
        predictor.conf, predictor.iou = conf, iou
        t0 = time.perf_counter()
        (pred,) = predictor.predict([image])
        elapsed = (time.perf_counter() - t0) * 1000
    return prediction_json(pred, predictor.model_name, elapsed)


def prediction_json(pred: Prediction, model_name: str, elapsed_ms: float) -> dict:
    """The API's answer for one image."""
    out = {"task_type": pred.task, "model_name": model_name,
           "inference_time_ms": round(elapsed_ms, 3), "width": pred.width,
           "height": pred.height}
    if pred.task == "classify":
        out["predictions"] = [{"class_id": c.class_id, "class_label": c.class_name,
                               "confidence": c.confidence} for c in pred.classes]
        out["top1"] = out["predictions"][0] if out["predictions"] else None
        return out
    out["annotations"] = [{
        "type": d.kind,
        "points": d.polygon if d.kind == "polygon" else [d.box[:2], d.box[2:]],
        "class_id": d.class_id, "class_label": d.class_name, "confidence": d.confidence,
        **({"detector": {"class_id": d.detector.class_id, "class_label": d.detector.class_name,
                         "confidence": d.detector.confidence}} if d.detector else {})}
        for d in pred.detections]
    return out


def _image(models: _Models, raw: bytes | None, frame_id) -> np.ndarray:
    if raw:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ApiError(400, "the uploaded file is not an image OpenCV can decode",
                           "upload a PNG, JPEG, BMP, TIFF or WebP file as 'image'")
        return image
    if frame_id is None or not str(frame_id).isdigit():
        raise ApiError(400, "give an image (multipart field 'image') or a frame id "
                            "('frame_id')", "e.g. curl -F image=@frame.png ...")
    with models.db_lock:
        project = models.project()
        frame = frames_repo.get_frame(project.conn, int(frame_id))
    if frame is None:
        raise ApiError(404, f"no frame {frame_id} in this project")
    from src.data.video import decode_image_file
    return decode_image_file(project.abspath(frame.image_path))


async def _form(request: Request):
    if not request.headers.get("content-type", "").startswith(("multipart/form-data",
                                                                "application/x-www-form")):
        return {}
    try:
        return await request.form(max_files=1, max_fields=10)
    except Exception as exc:  # noqa: BLE001 - starlette's multipart errors vary by version
        too_large = _find(exc, BodyTooLarge)
        if too_large is not None:    # the parser may wrap it in an ExceptionGroup
            raise too_large from None
        raise ApiError(400, f"the form cannot be read ({exc})",
                       "send multipart/form-data with an 'image' file") from exc


def _find(exc: BaseException | None, kind: type) -> BaseException | None:
    """`exc` or the first `kind` inside it (exception groups, causes, contexts)."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return e
        stack += [*getattr(e, "exceptions", ()), e.__cause__, e.__context__]
    return None


def _number(form, request: Request, name: str, default: float) -> float:
    value = form.get(name) or request.query_params.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be a number, got {str(value)[:40]!r}") from None


def _version_json(v) -> dict:
    return {"id": v.id, "task": v.task, "name": v.display_name or v.name, "series": v.name,
            "version": v.version, "is_active": v.is_active, "model_type": v.model_type,
            "classes": v.classes, "metrics": v.metrics, "created_at": v.created_at,
            "parent_id": v.parent_id}


def _run_routes(app: FastAPI, models: _Models) -> None:
    @app.get("/runs")
    def list_runs():
        with models.db_lock:
            return [_run_json(r) for r in runs_repo.list_runs(models.project().conn)]

    @app.get("/runs/{run_id}/events")
    def run_events(run_id: int, poll_s: float = 0.5):
        with models.db_lock:
            run = runs_repo.get_run(models.project().conn, run_id)
        if run is None:
            raise ApiError(404, f"no training run {run_id}", "GET /runs lists them")
        poll = min(max(poll_s, 0.05), 10.0)
        return StreamingResponse(_epoch_events(models.root, run_id, poll),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})


def _epoch_events(root: Path, run_id: int, poll_s: float):
    """Server-Sent Events: every stored epoch once, status changes, then 'end' when the run
    has finished. Reads the store, so it follows a training run by any process."""
    with Project.open(root, create=False) as project:
        sent, status = -1, None
        while True:
            run = runs_repo.get_run(project.conn, run_id)
            for epoch in runs_repo.list_epochs(project.conn, run_id):
                if epoch.epoch > sent:
                    sent = epoch.epoch
                    yield _sse("epoch", {"epoch": epoch.epoch, **epoch.metrics})
            if run.status != status:
                status = run.status
                yield _sse("status", {"status": status, "error": run.error})
            if status in FINISHED:
                yield _sse("end", {"status": status})
                return
            time.sleep(poll_s)


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _run_json(r) -> dict:
    return {"id": r.id, "name": r.name, "task": r.task, "model_type": r.model_type,
            "status": r.status, "queued_at": r.queued_at, "started_at": r.started_at,
            "finished_at": r.finished_at, "error": r.error}


def _error(status: int, error: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": error, **({"hint": hint} if hint else {})}, status_code=status)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(BodyTooLarge)
    async def too_large(request, exc: BodyTooLarge):
        return JSONResponse(too_large_json(exc.limit), status_code=413)

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return _error(exc.status, exc.error, exc.hint)

    @app.exception_handler(LabelLoopError)
    async def user_error(request, exc: LabelLoopError):
        # a model the store refuses to load is the server's state, not the request's fault
        refused = isinstance(exc, (ModelIntegrityError, UntrustedModelError))
        return _error(409 if refused else 400, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one); never another interface.

    proto must say TCP: asyncio sets TCP_NODELAY only on sockets whose proto is
    IPPROTO_TCP, and without it every keep-alive response waited ~40 ms for a delayed ACK
    (headers and body are written separately)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise LabelLoopError(f"cannot listen on {HOST}:{port} ({exc.strerror})", field="--port",
                             hint="choose another port, or 0 for a free one") from exc
    sock.listen(128)
    return sock


def make_server(app, sock: socket.socket, *, log_level: str = "warning"):
    """A uvicorn server for `app` on the already bound `sock` (call .run(sockets=[sock]))."""
    import uvicorn
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def new_token() -> str:
    return secrets.token_urlsafe(32)

