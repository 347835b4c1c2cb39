"""One object tracked through one source: embeddings from the cache, SAM 2 memory
tracking, corrections that re-propagate, and (when learning is on) the corrections handed
to LIT-LoRA as samples. Qt-free: the GUI worker and the CLI both drive it.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from src.training.sam.embeddings import EmbeddingCache
from src.training.sam.engine import FrameEmbedding
from src.training.sam.prompts import Prompt
from src.training.sam.tracker import MaskTracker, TrackedMask

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
OnCorrection = Callable[[int, MaskTracker, Prompt, TrackedMask], None]


class TrackSession:
    """Frame-by-frame tracking of one object of one source."""

    def __init__(self, cache: EmbeddingCache, source_id: int, num_frames: int,
                 read_image: Callable[[int], np.ndarray],
                 on_correction: Optional[OnCorrection] = None) -> None:
        self.cache, self.source_id, self.read_image = cache, source_id, read_image
        self.tracker = MaskTracker(cache.engine, num_frames)
        self.num_frames = num_frames
        self.masks: dict[int, TrackedMask] = {}
        self.on_correction = on_correction

    def embedding(self, index: int) -> FrameEmbedding:
        return self.cache.get_or_compute(self.source_id, index, lambda: self.read_image(index))

    def start_from_mask(self, index: int, mask: np.ndarray) -> TrackedMask:
        return self._keep(self.tracker.add_mask(index, self.embedding(index), mask))

    def start_from_prompt(self, index: int, prompt: Prompt) -> TrackedMask:
        return self._keep(self.tracker.add_prompt(index, self.embedding(index), prompt))

    def correct(self, index: int, prompt: Prompt) -> TrackedMask:
        """The user's points on a tracked frame: re-condition it, forget what followed (the
        next `propagate` redoes it) and, when learning, hand it over as a sample."""
        was_tracked = index in self.masks and not self.masks[index].conditioned
        tracked = self._keep(self.tracker.add_prompt(index, self.embedding(index), prompt))
        for later in [i for i in self.masks if i > index and not self.masks[i].conditioned]:
            del self.masks[later]
        if was_tracked and self.on_correction is not None:
            self.on_correction(index, self.tracker, prompt, tracked)
        return tracked

    def restart_after(self, index: int) -> None:
        """Forget the propagated masks after `index` (a new decoder redoes them)."""
        for later in [i for i in self.masks if i > index and not self.masks[i].conditioned]:
            del self.masks[later]
        self.tracker.forget_after(index)

    def propagate(self, last: int, *, should_stop: Optional[ShouldStop] = None,
                  progress: Optional[Progress] = None,
                  on_mask: Optional[Callable[[TrackedMask], None]] = None) -> list[TrackedMask]:
        """Track from the frame after the last one done up to `last` (included); stops
        between frames when `should_stop()` turns true and returns what was tracked."""
        start = max(self.masks) + 1 if self.masks else 0
        last = min(last, self.num_frames - 1)
        done: list[TrackedMask] = []
        for index in range(start, last + 1):
            if should_stop is not None and should_stop():
                break
            tracked = self._keep(self.tracker.step(index, self.embedding(index)))
            done.append(tracked)
            if on_mask is not None:
                on_mask(tracked)
            if progress is not None:
                progress(len(done), last + 1 - start)
        return done

    def _keep(self, tracked: TrackedMask) -> TrackedMask:
        self.masks[tracked.frame_index] = tracked
        return tracked
