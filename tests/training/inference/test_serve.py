"""The local inference API, served for real by uvicorn on a free loopback port and called
over HTTP with httpx: token, predictions, classification, SSE of a training, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from src.api.server import bind, create_app, make_server
from src.data.capture import capture_frames, import_media
from src.db import runs as runs_repo
from src.db.records import TrainingRun
from src.training.inference.predictor import create_predictor
from tests.training.inference.conftest import square_frame

pytestmark = pytest.mark.slow
TOKEN = "test-token-123"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def api(project):
    """(client with the token, base url) of a real server on 127.0.0.1."""
    sock = bind(0)
    server = make_server(create_app(project.root, TOKEN, device="cpu", max_body_bytes=200_000),
                         sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=60) as client:
        yield client, url
    server.should_exit = True
    thread.join(10)
    sock.close()


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_predict_answers_with_the_in_process_boxes(project, detector, api):
    client, url = api
    assert httpx.get(f"{url}/models").status_code == 401
    wrong = httpx.get(f"{url}/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]
    (listed,) = client.get("/models").json()
    assert listed["id"] == detector.id and listed["task"] == "detect" and listed["is_active"]
    assert client.get(f"/models/{detector.id}").json()["classes"] == ["red", "blue"]

    image = square_frame(4)
    r = client.post(f"/models/{detector.id}/predict", files={"image": ("f.png", _png(image))},
                    data={"conf": "0.001", "iou": "0.7"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task_type"] == "detect" and body["inference_time_ms"] > 0
    assert body["model_name"] == detector.display_name
    local = create_predictor(detector, project=project, conf=0.001, device="cpu")
    expected = local.predict([image])[0].detections
    assert len(body["annotations"]) == len(expected) > 0
    for got, want in zip(body["annotations"], expected):
        assert got["type"] == "box" and got["class_label"] == want.class_name
        assert np.allclose(got["points"], [want.box[:2], want.box[2:]], atol=1e-3)
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-6)

    # a project frame instead of an upload
    source, _ = import_media(project, _video(project.root.parent))
    (frame,) = capture_frames(project, source, [0])
    r = client.post(f"/models/{detector.id}/predict", data={"frame_id": str(frame.id),
                                                           "conf": "0.001"})
    assert r.status_code == 200 and (r.json()["width"], r.json()["height"]) == (96, 64)


def _video(folder: Path) -> Path:
    from tests.training.inference.conftest import VIDEO_SIZE
    path = folder / "api.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, VIDEO_SIZE)
    for i in range(3):
        writer.write(square_frame(i))
    writer.release()
    return path


def test_classification_answers_predictions_and_top1(project, crop_classifier, api):
    client, _ = api
    r = client.post(f"/models/{crop_classifier.id}/predict",
                    files={"image": ("c.png", _png(square_frame(0)[8:24, 4:20]))})
    body = r.json()
    assert r.status_code == 200 and body["task_type"] == "classify"
    assert body["top1"] == body["predictions"][0]
    assert {p["class_label"] for p in body["predictions"]} == {"red", "blue"}
    assert sum(p["confidence"] for p in body["predictions"]) == pytest.approx(1, abs=1e-4)


def _chunked_upload(size: int):
    """A well-formed multipart body sent in chunks, without a Content-Length."""
    yield (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
           b"Content-Type: image/png\r\n\r\n")
    for _ in range(size // 50_000):
        yield b"\0" * 50_000
    yield b"\r\n--xyz--\r\n"


def test_bad_input_gets_a_4xx_with_a_json_error(project, detector, api):
    client, _ = api
    predict = f"/models/{detector.id}/predict"
    cases = [
        (client.post(predict, files={"image": ("x.png", b"not an image at all")}), 400, "not an image"),
        (client.post(predict, files={"image": ("x.png", b"\0" * 300_000)}), 413, "over"),
        (client.post(predict, content=_chunked_upload(300_000),
                     headers={"content-type": "multipart/form-data; boundary=xyz"}), 413, "over"),
        (client.post("/models/999/predict", files={"image": ("f.png", _png(square_frame(0)))}),
         404, "no model version 999"),
        (client.post(predict, files={"image": ("f.png", _png(square_frame(0)))},
                     data={"conf": "7"}), 400, "conf must be between"),
        (client.post(predict, data={"conf": "abc"}), 400, "conf must be a number"),
        (client.post(predict), 400, "give an image"),
        (client.post(predict, data={"frame_id": "12345"}), 404, "no frame 12345"),
        (client.get("/models/abc"), 422, "model_id"),
        (client.get("/nowhere"), 404, "Not Found"),
        (client.get("/runs/77/events"), 404, "no training run 77"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (words, response.text)
        assert words in response.json()["error"]
    assert client.get("/models").status_code == 200      # the server is still fine


def test_training_events_stream_as_server_sent_events(project, api):
    client, _ = api
    run = runs_repo.add_run(project.conn, TrainingRun(name="r", task="detect",
                                                      model_type="yolo"))
    runs_repo.update_run(project.conn, run.id, status="running")
    runs_repo.record_epoch(project.conn, run.id, 0, {"losses": {"box": 1.5}})
    assert [r["id"] for r in client.get("/runs").json()] == [run.id]

    def train_on() -> None:          # another connection, as a training process would write
        conn = project.connect()
        time.sleep(0.3)
        runs_repo.record_epoch(conn, run.id, 1, {"losses": {"box": 1.2}})
        runs_repo.update_run(conn, run.id, status="completed")
        conn.close()

    writer = threading.Thread(target=train_on)
    writer.start()
    events = []
    with client.stream("GET", f"/runs/{run.id}/events", params={"poll_s": 0.05}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    writer.join()
    assert events[0] == ("epoch", {"epoch": 0, "losses": {"box": 1.5}})
    assert ("epoch", {"epoch": 1, "losses": {"box": 1.2}}) in events
    assert [e for e in events if e[0] == "status"][-1][1]["status"] == "completed"
    assert events[-1] == ("end", {"status": "completed"})


def test_serve_command_prints_a_token_and_requires_it(project, detector):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--project",
                             str(project.root), "serve", "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        url = first.split()[3]
        token = second.split()[1]
        assert url.startswith("http://127.0.0.1:") and len(token) >= 32
        assert httpx.get(f"{url}/models", timeout=30).status_code == 401
        ok = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert ok.status_code == 200 and ok.json()[0]["id"] == detector.id
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_listening_socket_is_loopback_tcp_and_a_taken_port_is_refused():
    import socket

    from src.errors import LabelLoopError
    sock = bind(0)
    try:
        host, port = sock.getsockname()
        # proto TCP is what makes asyncio set TCP_NODELAY on every connection (no 40 ms
        # delayed-ACK stall per keep-alive response)
        assert host == "127.0.0.1" and sock.proto == socket.IPPROTO_TCP
        with pytest.raises(LabelLoopError, match="cannot listen"):
            bind(port)
    finally:
        sock.close()
