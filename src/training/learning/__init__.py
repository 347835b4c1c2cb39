"""Learning from the user's corrections: the Qt-free core shared by the detector loop
(issue 14) and SAM 2 LIT-LoRA (issue 15).

- `early_stop`: StopRules + EarlyStopper (patience/good-enough, floor, zero, max epochs).
- `updater`: BackgroundUpdate (one update at a time in a daemon thread, wall-time budget,
  cancellation, coalesced requests) and `run_epochs`, the shared epoch loop.
- `samples`: SampleStore, the corrected samples of a session on disk (atomic).
- `adapters`: AdapterStore, the session's adapter (safetensors + meta JSON, atomic).
"""
