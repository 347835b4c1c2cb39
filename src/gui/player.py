"""Playback of one media source: position, play/pause on the wall clock, frame stepping.

Playing schedules frames by wall clock (frame due = start index + elapsed × fps) and asks the
decoder for the frame due *now*; when decoding falls behind, frames are skipped rather than
the video drifting. At most one decode is in flight while playing.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QImage

from src.db.records import MediaSource
from src.gui.decoder import DecodeThread


class Player(QObject):
    frame_shown = pyqtSignal(int, QImage)          # index, image now on screen
    preview_shown = pyqtSignal(int, int, QImage)   # scrubbing: index asked, index shown, image
    position_changed = pyqtSignal(int)            # index asked for (slider follows at once)
    playing_changed = pyqtSignal(bool)
    source_opened = pyqtSignal(object)            # MediaSource
    error = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._decoder = DecodeThread()
        worker = self._decoder.worker
        worker.opened.connect(self._on_worker_opened)
        worker.frame_decoded.connect(self._on_worker_frame_decoded)
        worker.preview_decoded.connect(self._on_worker_preview_decoded)
        worker.failed.connect(self._on_worker_failed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer_tick)
        self._generation = 0
        self.source: MediaSource | None = None
        self.frame_count = 0
        self.fps = 25.0
        self.index = -1                    # frame on screen
        self.target = -1                   # frame asked for
        self.image: np.ndarray | None = None
        self.image_timestamp: float | None = None  # the decoder's time of the frame on screen
        self.playing = False
        self.scrubbing = False
        self._in_flight = False
        self._requested = -1
        self._clock: tuple[float, int] = (0.0, 0)      # (wall time, index) playback started at
        self.shown_count = 0               # frames shown since the last play (drop statistics)

    # ---- source -------------------------------------------------------------------------
    def open_source(self, source: MediaSource, index: int = 0) -> None:
        self.pause()
        self._generation += 1
        self.source, self.frame_count = source, source.frame_count
        self.fps = source.fps or 25.0
        self.index, self.image, self._in_flight = -1, None, False
        self._decoder.worker.request_open(self._generation, Path(source.path))
        self.target = max(0, min(index, max(self.frame_count - 1, 0)))
        self._request(self.target)
        self.source_opened.emit(source)
        self.position_changed.emit(self.target)

    def _on_worker_opened(self, generation: int, info: dict) -> None:
        if generation == self._generation and info["frame_count"] != self.frame_count:
            self.frame_count = info["frame_count"]      # the reader's count is the verified one
            self.source_opened.emit(self.source)

    def close(self) -> None:
        """Stop playback and the decode thread (the window calls this when it closes)."""
        self.pause()
        self._generation += 1
        self._decoder.stop()

    # ---- position -----------------------------------------------------------------------
    def seek(self, index: int) -> None:
        """Go to frame `index`; a paused player stays paused, a playing one plays on from it."""
        if self.source is None or self.frame_count == 0:
            return
        index = max(0, min(int(index), self.frame_count - 1))
        self.target = index
        self.position_changed.emit(index)
        if self.playing:
            self._clock = (time.monotonic(), index)
        self._request(index)

    def scrub(self, index: int) -> None:
        """The slider is being dragged: show the nearest frame that is quick to show now
        (a cached frame or keyframe); `end_scrub` shows the exact frame."""
        if self.source is None or self.frame_count == 0:
            return
        self.pause()
        self.scrubbing = True
        self.target = max(0, min(int(index), self.frame_count - 1))
        self.position_changed.emit(self.target)
        self._decoder.worker.request_preview(self._generation, self.target)

    def end_scrub(self, index: int) -> None:
        self.scrubbing = False
        self.seek(index)

    def step(self, delta: int) -> None:
        self.seek((self.target if self.target >= 0 else 0) + delta)

    def timestamp(self, index: int) -> float | None:
        """The decoder's time of the frame on screen; index / fps for one not decoded yet."""
        if index == self.index and self.image_timestamp is not None:
            return self.image_timestamp
        return index / self.source.fps if self.source and self.source.fps else None

    def _request(self, index: int) -> None:
        self._in_flight, self._requested = True, index
        self._decoder.worker.request_frame(self._generation, index)

    def _on_worker_frame_decoded(self, generation: int, index: int, bgr, image: QImage,
                                 timestamp: float | None) -> None:
        if generation != self._generation:
            return
        self._in_flight = False
        nominal = self.timestamp(index) if index != self.index else None
        self.index, self.image, self.image_timestamp = index, bgr, timestamp
        self.shown_count += 1
        self.frame_shown.emit(index, image)
        if (index == self.target and timestamp is not None and nominal is not None
                and abs(timestamp - nominal) > 1e-3):
            self.position_changed.emit(index)   # variable frame rate: show the real time
        if self.playing:
            self._on_timer_tick()
        elif index != self.target and not self.scrubbing:
            self._request(self.target)

    def _on_worker_preview_decoded(self, generation: int, index: int, shown: int,
                                   image: QImage) -> None:
        if generation == self._generation and self.scrubbing:
            self.preview_shown.emit(index, shown, image)

    def _on_worker_failed(self, generation: int, exc: Exception) -> None:
        if generation == self._generation:
            self._in_flight = False
            self.pause()
            self.error.emit(exc)

    # ---- playback -----------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.playing or self.source is None or self.frame_count < 2:
            return
        start = self.target if 0 <= self.target < self.frame_count - 1 else 0
        self.target = start
        self._clock = (time.monotonic(), start)
        self.playing = True
        self.shown_count = 0
        self.playing_changed.emit(True)
        self._on_timer_tick()

    def pause(self) -> None:
        if not self.playing:
            return
        self.playing = False
        self._timer.stop()
        # Stay on the frame on screen (or the one about to be).
        stay = self._requested if self._in_flight else self.index
        if stay >= 0:
            self.target = stay
            self.position_changed.emit(stay)
        self.playing_changed.emit(False)

    def _due(self, now: float) -> int:
        started, start_index = self._clock
        return start_index + int((now - started) * self.fps)

    def _on_timer_tick(self) -> None:
        if not self.playing:
            return
        now = time.monotonic()
        due = min(self._due(now), self.frame_count - 1)
        if due != self.target:
            self.target = due
            self.position_changed.emit(due)
        if self.index == self.frame_count - 1 and due == self.index:
            self.pause()
            return
        if not self._in_flight and due != self.index:
            self._request(due)
        started, start_index = self._clock
        next_due = started + (due + 1 - start_index) / self.fps
        self._timer.start(max(1, round((next_due - now) * 1000)))
