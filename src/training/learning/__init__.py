"""Learning from the user's corrections: the Qt-free core shared by the detector loop
(issue 14) and SAM 2 LIT-LoRA (issue 15), and the detector loop itself.

Shared core (stable API; only additive changes):
- `early_stop`: StopRules + EarlyStopper (patience/good-enough, floor, zero, max epochs).
- `updater`: BackgroundUpdate (one update at a time in a daemon thread, wall-time budget,
  cancellation, coalesced requests) and `run_epochs`, the shared epoch loop.
- `samples`: SampleStore, the corrected samples of a session on disk (atomic).
- `adapters`: AdapterStore, the session's adapter (safetensors + meta JSON, atomic).

Detector and segmenter loop:
- `session`: LearningSession, the API the GUI and the CLI use (see its docstring).
- `detector_update` / `detector_data`: one adapter update on corrected frames; what differs
  by task is an `UpdateTask` (`DETECT` there, `SEGMENT` in `segment_update`: polygons,
  ultralytics' segmentation loss, mask IoU).
- `edits`: the fewest edits from proposals to the truth, and the proposal score.
- `simulate`: the simulated annotator of `python main.py learn simulate`.
- `promote`: base + adapter registered as a model version.
- `settings`: LearnSettings.
"""
