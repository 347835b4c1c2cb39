"""Replays the import/export cases of the hardening issue (#9) through the real CLI, one
process each, and prints for each: exit code, peak memory (max RSS), wall time, the first
stderr line, and how many stderr lines there were.

    .venv/bin/python benchmarks/hardening_probe.py [--work DIR] [--big-json-mb 237]

Every case builds its input in a scratch folder; nothing outside it is touched (the
"outside" images are made there too). Exit 2 with one line is the contract for bad input.
"""
from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], project: Path, shell_tail: str = "") -> dict:
    cmd = [sys.executable, str(ROOT / "main.py"), "--project", str(project), *argv]
    start = time.perf_counter()
    if shell_tail:        # e.g. '| head -c 100': through a real pipe
        line = " ".join(f"'{c}'" for c in cmd) + " " + shell_tail
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", line], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    return {"code": proc.returncode, "seconds": time.perf_counter() - start,
            "stderr": err.decode(errors="replace"), "stdout": (out or b"").decode(errors="replace")}


def rss_of(argv: list[str], project: Path) -> tuple[dict, float]:
    """run() under /usr/bin/time -v for the peak memory, in MB."""
    cmd = ["/usr/bin/time", "-v", sys.executable, str(ROOT / "main.py"), "--project",
           str(project), *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = proc.stderr.splitlines()
    rss = next((int(l.split(":")[1]) / 1024 for l in lines if "Maximum resident" in l), -1)
    ours = [l for l in lines if not l.startswith("\t") and "Command exited" not in l
            and "Command being timed" not in l]
    return {"code": proc.returncode, "seconds": time.perf_counter() - start,
            "stderr": "\n".join(ours) + ("\n" if ours else ""), "stdout": proc.stdout}, rss


def image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (32, 48, 3), np.uint8))


def coco(file_name, *, width=48, height=32, bbox=(1, 1, 10, 10), categories=None) -> dict:
    return {"images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": list(bbox)}],
            "categories": categories or [{"id": 1, "name": "car"}]}


def labelme(image_path, *, label="car", flags=None, points=None) -> dict:
    return {"flags": flags or {}, "imagePath": image_path, "imageWidth": 48, "imageHeight": 32,
            "shapes": [{"label": label, "points": points or [[1, 1], [9, 9]],
                        "shape_type": "rectangle"}]}


def png_bomb(path: Path, side: int) -> None:
    """A real PNG of side x side black pixels: ~1 MB on disk, side*side*3 bytes decoded."""
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + side * 3)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", side, side, 8, 2, 0, 0, 0)) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


class Probe:
    def __init__(self, work: Path, big_json_mb: int) -> None:
        self.work, self.big_json_mb, self.n = work, big_json_mb, 0

    def case(self) -> tuple[Path, Path]:
        """A fresh dataset folder (ds/ with a.png b.png c.png, outside/secret.png) and project."""
        self.n += 1
        base = self.work / f"case{self.n:02d}"
        for i, name in enumerate(("a.png", "b.png", "c.png")):
            image(base / "ds" / name, i)
        image(base / "outside" / "secret.png", 9)
        return base, base / "project"

    def report(self, title: str, result: dict, rss: float | None = None, extra: str = "") -> None:
        lines = result["stderr"].splitlines()
        first = lines[0] if lines else "(no stderr)"
        mem = f" rss={rss:.0f}MB" if rss is not None else ""
        print(f"[{title}] exit={result['code']} t={result['seconds']:.1f}s{mem}"
              f" stderr_lines={len(lines)} {extra}\n    {first[:300]}")

    def coco_case(self, title: str, doc: dict, *, images: str | None = None,
                  extra=lambda base, project: "") -> None:
        base, project = self.case()
        (base / "ds" / "x.json").write_text(json.dumps(doc))
        argv = ["import", str(base / "ds" / "x.json"), "--format", "coco"]
        if images:
            argv += ["--images", str(base / images)]
        self.report(title, run(argv, project), extra=extra(base, project))

    def all(self) -> None:
        self.traversal()
        self.resources()
        self.bad_values()
        self.exports_and_ids()

    def traversal(self) -> None:
        self.coco_case("COCO file_name ../", coco("../outside/secret.png"))
        self.coco_case("COCO file_name absolute", coco(str(self.work / f"case{self.n + 1:02d}"
                                                           / "outside" / "secret.png")))
        base, project = self.case()
        (base / "ds" / "link.png").symlink_to(base / "outside" / "secret.png")
        (base / "ds" / "x.json").write_text(json.dumps(coco("link.png")))
        self.report("COCO file_name symlink", run(
            ["import", str(base / "ds" / "x.json"), "--format", "coco"], project))
        base, project = self.case()
        (base / "ds" / "x.json").write_text(json.dumps(labelme("../outside/secret.png")))
        self.report("labelme imagePath ../", run(
            ["import", str(base / "ds"), "--format", "labelme"], project))
        base, project = self.case()
        (base / "ds" / "Annotations").mkdir()
        (base / "ds" / "Annotations" / "x.xml").write_text(
            "<annotation><filename>../../outside/secret.png</filename><size><width>48</width>"
            "<height>32</height></size></annotation>")
        self.report("VOC <filename> ../", run(["import", str(base / "ds"), "--format", "voc"],
                                               project))
        base, project = self.case()
        (base / "ds" / "list.txt").write_text("../outside/secret.png\n")
        (base / "ds" / "data.yaml").write_text(yaml.safe_dump({"train": "list.txt",
                                                               "names": ["car"]}))
        self.report("YOLO list entry ../", run(["import", str(base / "ds" / "data.yaml"),
                                                "--format", "yolo"], project))
        base, project = self.case()
        (base / "ds" / "data.yaml").write_text(yaml.safe_dump({"train": "../outside",
                                                               "names": ["car"]}))
        self.report("YOLO train: ../outside", run(["import", str(base / "ds" / "data.yaml"),
                                                   "--format", "yolo"], project))

        def frames(base, project):
            info = run(["info", "--json"], project)
            return f"frames_in_project={json.loads(info['stdout'])['frames']} (folder holds 3)"
        self.coco_case("COCO naming 1 of 3 images", coco("b.png"), extra=frames)
        self.coco_case("COCO outside image with --images DIR", coco("secret.png"),
                       images="outside", extra=frames)

    def resources(self) -> None:
        base, project = self.case()
        t = time.perf_counter()
        png_bomb(base / "ds" / "bomb.png", 20000)
        size_kb = (base / "ds" / "bomb.png").stat().st_size // 1024
        (base / "ds" / "x.json").write_text(json.dumps(coco("bomb.png", width=20000,
                                                            height=20000)))
        result, rss = rss_of(["import", str(base / "ds" / "x.json"), "--format", "coco"],
                             project)
        self.report(f"PNG bomb 20000x20000 ({size_kb} KB, made in "
                    f"{time.perf_counter() - t:.0f}s)", result, rss)
        base, project = self.case()
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
            f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
        (base / "ds" / "data.yaml").write_text("\n".join(lines) + "\nnames: *a8\ntrain: .\n")
        result, rss = rss_of(["import", str(base / "ds" / "data.yaml"), "--format", "yolo"],
                             project)
        size = (base / "ds" / "data.yaml").stat().st_size
        self.report(f"YAML alias bomb ({size} bytes, 10^9 nodes)", result, rss)
        base, project = self.case()
        with open(base / "ds" / "big.json", "w") as f:
            f.write('{"images": [], "annotations": [], "categories": [], "info": "')
            chunk = "x" * (1 << 20)
            for _ in range(self.big_json_mb):
                f.write(chunk)
            f.write('"}')
        result, rss = rss_of(["import", str(base / "ds" / "big.json"), "--format", "coco"],
                             project)
        self.report(f"COCO JSON of {self.big_json_mb} MB", result, rss)
        (base / "ds" / "big.json").unlink()
        base, project = self.case()
        (base / "ds" / "x.json").write_text("[" * 100_000 + "]" * 100_000)
        self.report("JSON nested 100,000 deep", run(
            ["import", str(base / "ds" / "x.json"), "--format", "coco"], project))
        base, project = self.case()
        (base / "ds" / "data.yaml").write_text("names: " + "[" * 5000 + "]" * 5000 + "\n")
        self.report("YAML nested 5,000 deep", run(
            ["import", str(base / "ds" / "data.yaml"), "--format", "yolo"], project))

    def bad_values(self) -> None:
        for ref in (".hidden.png", "notes.txt"):
            base, project = self.case()
            shutil.copy(base / "ds" / "a.png", base / "ds" / ref)
            (base / "ds" / "x.json").write_text(json.dumps(coco(ref)))
            self.report(f"COCO file_name {ref}", run(
                ["import", str(base / "ds" / "x.json"), "--format", "coco"], project))
        self.coco_case("COCO file_name of 300 chars", coco("x" * 300 + ".png"))
        self.coco_case("COCO width 10**400", coco("a.png", width=10 ** 400))
        self.coco_case("COCO bbox w 10**400", coco("a.png", bbox=(1, 1, 10 ** 400, 5)))
        base, project = self.case()
        (base / "ds" / "x.json").write_text(json.dumps(coco("a.png", categories=[
            {"id": 1, "name": "Car"}, {"id": 2, "name": "car"}])))
        result = run(["import", str(base / "ds" / "x.json"), "--format", "coco"], project)
        created = json.loads(result["stdout"])["classes_created"] if result["code"] == 0 else None
        stored = json.loads(run(["info", "--json"], project)["stdout"])["classes"]
        self.report("COCO categories 'Car' and 'car'", result,
                    extra=f"classes_created={created} classes_in_project={sorted(stored)}")
        self.coco_case("COCO category of 300 chars (crops folder)", coco(
            "a.png", categories=[{"id": 1, "name": "x" * 300}]))
        for title, doc in (("labelme points 1e999", labelme("a.png", points=[[1e999, 1],
                                                                              [9, 9]])),
                           ("labelme points 10**400", labelme("a.png", points=[[10 ** 400, 1],
                                                                                [9, 9]])),
                           ("labelme label with newline", labelme("a.png", label="two\nlines")),
                           ("labelme label with NUL", labelme("a.png", label="nul\x00")),
                           ("labelme flags {'': true}", labelme("a.png", flags={"": True}))):
            base, project = self.case()
            (base / "ds" / "x.json").write_text(json.dumps(doc))
            self.report(title, run(["import", str(base / "ds"), "--format", "labelme"], project))
        for title, token in (("YOLO class index ²", "²"), ("YOLO class index 5000 digits",
                                                          "9" * 5000)):
            base, project = self.case()
            (base / "ds" / "images").mkdir()
            shutil.copy(base / "ds" / "a.png", base / "ds" / "images" / "a.png")
            (base / "ds" / "labels").mkdir()
            (base / "ds" / "labels" / "a.txt").write_text(f"{token} 0.5 0.5 0.2 0.2\n")
            (base / "ds" / "data.yaml").write_text(yaml.safe_dump({"train": "images",
                                                                   "names": ["car"]}))
            self.report(title, run(["import", str(base / "ds" / "data.yaml"), "--format",
                                    "yolo"], project))

    def exports_and_ids(self) -> None:
        base, project = self.case()
        # 3000 classes in use: `info --json` prints more than a pipe buffer (64 KB)
        doc = coco("a.png", categories=[{"id": i, "name": f"class-{i:04d}-" + "y" * 30}
                                        for i in range(1, 3001)])
        doc["annotations"] = [{"id": i, "image_id": 1, "category_id": i, "bbox": [1, 1, 9, 9]}
                              for i in range(1, 3001)]
        (base / "ds" / "x.json").write_text(json.dumps(doc))
        run(["import", str(base / "ds" / "x.json"), "--format", "coco"], project)
        for title, out in (("export to /etc/passwd/x", "/etc/passwd/x"),
                           ("export to /proc/x", "/proc/x"),
                           ("export to a 300-char name", str(base / ("x" * 300)))):
            self.report(title, run(["export", out, "--format", "voc"], project))
        self.report("dataset show x:v99999999999999999999", run(
            ["dataset", "show", "x:v99999999999999999999"], project))
        self.report("frames capture 99999999999999999999", run(
            ["frames", "capture", "99999999999999999999", "--at", "0"], project))
        size = len(run(["info", "--json"], project)["stdout"])
        self.report("info --json | head -c 100", run(["info", "--json"], project,
                                                     shell_tail="| head -c 100"),
                    extra=f"(full output {size:,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--big-json-mb", type=int, default=237)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hardening-probe-"))
    try:
        Probe(work, args.big_json_mb).all()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
