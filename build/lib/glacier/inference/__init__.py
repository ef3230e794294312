"""Inference: full-scene prediction, vectorization, evaluation."""
