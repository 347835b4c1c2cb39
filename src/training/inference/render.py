"""Annotated output: predictions drawn on their frames, written as a video (.mp4/.avi/.mkv)
or as a folder of PNG images. The file/folder appears only when complete (temp + rename)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from src.errors import MediaError
from src.training.inference.results import Prediction

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
_PALETTE = ((75, 25, 230), (75, 180, 60), (216, 99, 67), (49, 130, 245), (180, 30, 145),
            (244, 212, 66), (230, 50, 240), (69, 239, 191))


def draw(image: np.ndarray, pred: Prediction) -> np.ndarray:
    """A copy of the BGR image with boxes/polygons, class, confidence and track id drawn."""
    out = image.copy()
    for det in pred.detections:
        colour = _PALETTE[det.class_id % len(_PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        if det.polygon:
            cv2.polylines(out, [np.array(det.polygon, np.int32)], True, colour, 1, cv2.LINE_AA)
        else:
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1, cv2.LINE_AA)
        text = f"{det.class_name} {det.confidence:.2f}"
        if det.track_id is not None:
            text = f"#{det.track_id} " + text
        cv2.putText(out, text, (x1, max(y1 - 3, 9)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                    cv2.LINE_AA)
    if pred.top1 is not None:
        cv2.putText(out, f"{pred.top1.class_name} {pred.top1.confidence:.2f}", (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class AnnotatedOutput:
    """Collects drawn frames into `target` (a video file or an image folder)."""

    def __init__(self, target: str | Path, fps: float | None = None) -> None:
        self.target = Path(target).expanduser().resolve()
        self.fps = fps or 10.0
        self.is_video = self.target.suffix.lower() in VIDEO_SUFFIXES
        if self.target.exists() and not (self.is_video and self.target.is_file()):
            raise MediaError("the output already exists", path=self.target,
                             hint="choose a new file or folder name")
        if not self.target.parent.is_dir():
            raise MediaError("the output's folder does not exist", path=self.target.parent)
        self._tmp = Path(tempfile.mkdtemp(prefix=".annotated-", dir=self.target.parent))
        self._writer = None
        self.count = 0

    def add(self, image: np.ndarray, pred: Prediction) -> None:
        frame = draw(image, pred)
        if self.is_video:
            if self._writer is None:
                self._writer = self._open_writer(frame.shape[1], frame.shape[0])
            self._writer.write(frame)
        else:
            index = pred.frame_index if pred.frame_index is not None else self.count
            cv2.imwrite(str(self._tmp / f"{index:06d}.png"), frame)
        self.count += 1

    def _open_writer(self, width: int, height: int):
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[self.target.suffix.lower()])
        writer = cv2.VideoWriter(str(self._tmp / f"out{self.target.suffix}"), fourcc, self.fps,
                                 (width, height))
        if not writer.isOpened():
            raise MediaError("OpenCV cannot write this kind of video", path=self.target,
                             hint="use .avi (MJPG) or a folder for PNG images")
        return writer

    def finish(self) -> Path:
        """Move the finished video/folder into place."""
        if self.count == 0:
            self.abort()
            raise MediaError("no frame was predicted, so nothing was written", path=self.target)
        if self.is_video:
            if self._writer is not None:
                self._writer.release()
            os.replace(self._tmp / f"out{self.target.suffix}", self.target)
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            os.replace(self._tmp, self.target)
        return self.target

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
        shutil.rmtree(self._tmp, ignore_errors=True)
