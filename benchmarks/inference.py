"""Inference benchmarks (issue 11). Prints the figures; asserts nothing.

In one process, on the demo video (320x240, 300 frames) and on a 1280x720 video:
1. our `predict` (create_predictor: verified load, our result dataclasses) vs plain
   ultralytics `model.predict` on the same decoded frames, same model and arguments,
   batch 8: ms per frame, frames per second, ratio (median of back-to-back pairs);
   target <= 1.05x. Measured at conf 0.25 and at conf 0.001 (up to 300 boxes a frame to
   convert: the worst case for our conversion).
2. ONNX Runtime vs PyTorch on CPU, batch 1, the model exported by `models export --format
   onnx` (src/training/models/export.py), run through the same predictor: target <= 0.8x.
3. The local API (`main.py serve` as a child process) vs in-process predict, one PNG per
   request, sequential: p50/p90 latency; target <= +5 ms at p50. Then 4 concurrent clients
   for --api-seconds (30): requests, requests/s, errors (target: none).
4. Propagation: frames per second of predict + ByteTrack over the demo video, and of
   ByteTrack alone fed with the demo's ground-truth boxes (the detector is untrained here).

The model is a yolov8n (from yolov8n.yaml) trained for 1 epoch on tiny synthetic data,
unless --weights gives an ultralytics .pt (it is imported and trusted in a temp project).
Speed does not depend on what the weights learned, except through the number of boxes,
hence the two confidence thresholds.

    .venv/bin/python benchmarks/inference.py [--weights X.pt] [--repeat 3] [--api-seconds 30]
        [--only predict onnx api tracking]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="labelloop-yolo-cfg-"))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from src.db.project import Project  # noqa: E402
from src.training.inference.predictor import create_predictor  # noqa: E402
from src.training.models import ModelManager  # noqa: E402

BATCH = 8
PARTS = ("predict", "onnx", "api", "tracking")


def make_model(tmp: Path, weights: str | None) -> Path:
    if weights:
        return Path(weights)
    from src.training.control import RunControl
    from src.training.events import EventBus
    from src.training.yolo_trainer import train_yolo
    sys.path.insert(0, str(ROOT / "tests" / "training"))
    from yolo_fixtures import write_yolo_dataset, yolo_config
    outcome = train_yolo(yolo_config("detect", epochs=1), write_yolo_dataset(tmp / "data"),
                         tmp / "run", EventBus(), RunControl(), base_dir=tmp / "no-base")
    return Path(outcome.merged_model)


def make_720p(path: Path, frames: int = 48) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (90, 160, 3), np.uint8), (1280, 720))
    for i in range(frames):
        image = np.roll(base, i * 6, axis=1)
        cv2.rectangle(image, (100 + 8 * i, 200), (260 + 8 * i, 360), (40, 40, 220), -1)
        writer.write(image)
    writer.release()
    return path


def decode_all(path: Path, limit: int | None = None) -> list[np.ndarray]:
    from src.data.video import open_media
    with open_media(path, cache_bytes=0) as reader:
        count = reader.frame_count if limit is None else min(limit, reader.frame_count)
        return [reader.read(i) for i in range(count)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def in_batches(fn, frames: list[np.ndarray], batch: int) -> None:
    for start in range(0, len(frames), batch):
        fn(frames[start:start + batch])


def bench_overhead(weights: Path, frames: list[np.ndarray], label: str, imgsz: int,
                   repeat: int) -> None:
    """Batch by batch, plain and ours alternate (ABBA), so load from other processes on
    the machine falls on both alike; the ratio is the median over passes of summed times."""
    from ultralytics import YOLO
    for conf in (0.25, 0.001):
        ours = create_predictor(weights, conf=conf, iou=0.7, imgsz=imgsz, device="cpu",
                                batch=BATCH)
        plain = YOLO(str(weights))
        kwargs = dict(conf=conf, iou=0.7, imgsz=imgsz, device="cpu", verbose=False, batch=BATCH)
        sides = {"plain": lambda b: plain.predict(b, **kwargs), "ours": ours.predict}
        batches = [frames[i:i + BATCH] for i in range(0, len(frames), BATCH)]
        for side in sides.values():                                  # warm-up
            side(batches[0])
        passes = []
        for _ in range(repeat):
            total = {"plain": 0.0, "ours": 0.0}
            for k, batch in enumerate(batches):
                order = ("plain", "ours") if k % 2 == 0 else ("ours", "plain")
                for name in order:
                    total[name] += timed(lambda: sides[name](batch))
            passes.append(total)
        boxes = sum(len(p.detections) for p in ours.predict(batches[0])) / len(batches[0])
        n = len(frames)
        p_ms = statistics.median(t["plain"] for t in passes) / n * 1000
        o_ms = statistics.median(t["ours"] for t in passes) / n * 1000
        ratio = statistics.median(t["ours"] / t["plain"] for t in passes)
        print(f"[predict {label}, {n} frames, imgsz {imgsz}, conf {conf}, {boxes:.0f} "
              f"boxes/frame] plain ultralytics {p_ms:.2f} ms/frame ({1000 / p_ms:.1f} fps), "
              f"ours {o_ms:.2f} ms/frame ({1000 / o_ms:.1f} fps): ratio {ratio:.3f} "
              f"(target <= 1.05; batches alternate ABBA, median of {repeat} passes)",
              flush=True)


def bench_onnx(project: Project, version, frames: list[np.ndarray], imgsz: int,
               repeat: int) -> None:
    from src.training.models.export import export_version
    manager = ModelManager(project)
    onnx = export_version(manager, version, "onnx", project.root / "model.onnx", imgsz)
    torch_p = create_predictor(version, project=project, conf=0.25, imgsz=imgsz, device="cpu",
                               batch=1)
    onnx_p = create_predictor(onnx, conf=0.25, imgsz=imgsz, device="cpu", batch=1)
    one_by_one = lambda p: lambda: [p.predict([f]) for f in frames]  # noqa: E731
    one_by_one(torch_p)(), one_by_one(onnx_p)()
    pairs = [(timed(one_by_one(torch_p)), timed(one_by_one(onnx_p))) for _ in range(repeat)]
    t_ms = statistics.median(t for t, _ in pairs) / len(frames) * 1000
    o_ms = statistics.median(o for _, o in pairs) / len(frames) * 1000
    ratio = statistics.median(o / t for t, o in pairs)
    print(f"[onnx, CPU, batch 1, imgsz {imgsz}] PyTorch {t_ms:.2f} ms/frame, ONNX Runtime "
          f"{o_ms:.2f} ms/frame: ratio {ratio:.3f} (target <= 0.8)", flush=True)


def start_server(project: Project) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--project",
                             str(project.root), "serve", "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    url = proc.stdout.readline().split()[3]
    token = proc.stdout.readline().split()[1]
    return proc, url, token


class Client:
    """A keep-alive HTTP/1.1 client on http.client: the API's latency without a client
    library's own (httpx added ~5-40 ms per request on this machine)."""

    def __init__(self, url: str, token: str) -> None:
        from urllib.parse import urlparse
        u = urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.token = token

    def predict(self, model_id: int, png: bytes) -> tuple[int, dict]:
        b = "labelloop-bench"
        body = (f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="f.png"'
                f"\r\nContent-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{b}--\r\n".encode()
        self.conn.request("POST", f"/models/{model_id}/predict", body=body, headers={
            "Authorization": f"Bearer {self.token}",
            "Content-Type": f"multipart/form-data; boundary={b}"})
        response = self.conn.getresponse()
        return response.status, json.loads(response.read())


def bench_api(project: Project, version, frames: list[np.ndarray], seconds: float) -> None:
    pngs = [cv2.imencode(".png", f)[1].tobytes() for f in frames]
    local = create_predictor(version, project=project, conf=0.25, device="cpu", batch=1)
    proc, url, token = start_server(project)
    try:
        client = Client(url, token)
        assert client.predict(version.id, pngs[0])[0] == 200
        local.predict([frames[0]])
        api_ms, local_ms, server_ms = [], [], []
        for png in pngs:
            t0 = time.perf_counter()
            local.predict([cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)])
            local_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            status, body = client.predict(version.id, png)
            api_ms.append((time.perf_counter() - t0) * 1000)
            server_ms.append(body["inference_time_ms"])
        p50 = statistics.median
        print(f"[api, {frames[0].shape[1]}x{frames[0].shape[0]} PNG ({len(pngs[0]) // 1024} KiB),"
              f" sequential, {len(pngs)} images] in-process decode+predict p50 "
              f"{p50(local_ms):.2f} ms (p90 {_p90(local_ms):.2f}); API round trip p50 "
              f"{p50(api_ms):.2f} ms (p90 {_p90(api_ms):.2f}), of which predict in the server "
              f"{p50(server_ms):.2f}: +{p50(api_ms) - p50(local_ms):.2f} ms at p50 "
              f"(target <= +5 ms)", flush=True)
        concurrent_clients(url, token, version.id, pngs, seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def concurrent_clients(url: str, token: str, model_id: int, pngs: list[bytes],
                       seconds: float, clients: int = 4) -> None:
    counts, errors, latencies = [0] * clients, [0] * clients, []
    stop = time.monotonic() + seconds

    def work(k: int) -> None:
        client, i = Client(url, token), k
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                ok = client.predict(model_id, pngs[i % len(pngs)])[0] == 200
            except (OSError, http.client.HTTPException, ValueError):
                ok, client = False, Client(url, token)
            latencies.append((time.perf_counter() - t0) * 1000)
            counts[k] += ok
            errors[k] += not ok
            i += clients

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    print(f"[api, {clients} concurrent clients, {wall:.0f} s] {sum(counts)} requests, "
          f"{sum(counts) / wall:.1f} req/s, p50 {statistics.median(latencies):.1f} ms, "
          f"errors {sum(errors)} (target: none)", flush=True)


def bench_tracking(weights: Path, demo_video: Path, frames: list[np.ndarray]) -> None:
    from src.data.demo import MIN_VISIBLE, render
    from src.training.inference.media import open_input
    from src.training.inference.propagate import make_tracker, propagate, track_frame
    from src.training.inference.results import Detection, Prediction
    predictor = create_predictor(weights, conf=0.25, device="cpu", batch=BATCH, imgsz=320)
    with open_input(demo_video) as media:
        indices = list(range(media.frame_count))
        t = timed(lambda: list(propagate(predictor, media, indices)))
    print(f"[propagate, demo video, predict + ByteTrack, decoding included] "
          f"{len(indices) / t:.1f} frames/s", flush=True)
    truth = []
    for image, objects in render(seed=0):
        pred = Prediction(width=image.shape[1], height=image.shape[0], task="detect")
        for k, (cls, outline, visible) in enumerate(objects):
            if visible >= MIN_VISIBLE:
                (x1, y1), (x2, y2) = outline.min(axis=0), outline.max(axis=0)
                pred.detections.append(Detection("box", k % 3, cls, 0.9,
                                                 [float(x1), float(y1), float(x2), float(y2)]))
        truth.append((pred, image))
    tracker = make_tracker("bytetrack", 0.25)
    t = timed(lambda: [track_frame(tracker, p, im) for p, im in truth])
    boxes = sum(len(p.detections) for p, _ in truth) / len(truth)
    print(f"[tracker alone, ByteTrack on the demo's ground-truth boxes, {boxes:.1f} per frame] "
          f"{len(truth) / t:.0f} frames/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="an ultralytics .pt to benchmark (default: a "
                                          "1-epoch yolov8n)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--api-seconds", type=float, default=30.0)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="run only these parts")
    parser.add_argument("--frames", type=int, default=160,
                        help="demo frames in the predict comparison (of 300)")
    args = parser.parse_args()
    import torch
    print(f"CPU threads: torch {torch.get_num_threads()}, cores {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f} (other work on this machine slows every "
          f"figure; ratios come from back-to-back pairs)", flush=True)
    with tempfile.TemporaryDirectory(prefix="labelloop-bench-inference-") as tmp:
        tmp = Path(tmp)
        os.environ["LABELLOOP_MODELS"] = str(tmp / "models")
        from src.data.demo import VIDEO_NAME, build_demo_project
        from src.training.models.bundle import import_model
        t0 = time.perf_counter()
        weights = make_model(tmp, args.weights)
        project = build_demo_project(tmp / "project")
        version = import_model(ModelManager(project), weights, task="detect", trusted=True)
        demo_video = project.root / "media" / VIDEO_NAME
        if not demo_video.exists():
            demo_video = next(project.root.rglob(VIDEO_NAME))
        demo = decode_all(demo_video)
        hd = decode_all(make_720p(tmp / "hd.mp4"))
        print(f"[setup] model, demo project and videos in {time.perf_counter() - t0:.1f} s: "
              f"demo {len(demo)} frames {demo[0].shape[1]}x{demo[0].shape[0]}, "
              f"720p {len(hd)} frames", flush=True)
        weights = ModelManager(project).weights_path(version)
        if "predict" in args.only:
            bench_overhead(weights, demo[:args.frames], "demo video", 320, args.repeat)
            bench_overhead(weights, hd, "720p video", 640, args.repeat)
        if "onnx" in args.only:
            bench_onnx(project, version, demo[:60], 320, args.repeat)
        if "api" in args.only:
            bench_api(project, version, demo[:100], args.api_seconds)
        if "tracking" in args.only:
            bench_tracking(weights, demo_video, demo)
        project.close()


if __name__ == "__main__":
    main()
