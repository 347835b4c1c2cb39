"""Inference: one predictor contract, predicting over media, proposals, two-stage, tracking."""
