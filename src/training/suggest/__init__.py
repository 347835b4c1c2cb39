"""Which frame to label next: rank frames of a source by the model's uncertainty, skipping
near-duplicates of frames already labelled (src/training/suggest/ranking.py)."""
