"""Inference: mapping whole scenes with a trained model, and what is made of the maps.

Subpackages (each ``__init__`` is its public face):

- :mod:`glacier.inference.engine`: the pipelined predictor (reader threads → device → writer)
- :mod:`glacier.inference.evaluation`: scores against reference outlines
- :mod:`glacier.inference.products`: polygons, overlays, STAC items, per-scene records
- :mod:`glacier.inference.inputs`: ``input=`` files turned into scenes laid out as the
  checkpoint's training data
- :mod:`glacier.inference.output_names`: the names of a prediction's output files

Nothing is imported here.
"""

__all__ = ["engine", "evaluation", "inputs", "output_names", "products"]
