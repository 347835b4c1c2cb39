"""Assisted labeling in the annotator: pre-label and propagate with the active model."""
