"""Dataset descriptions.

the ``data/`` config as typed objects, the embedded real sample, and the generated synthetic
scenes.
"""

from glacier.data.spec.data_spec import DataSpec
from glacier.data.spec.retreat import Retreat, apply_retreat, largest_inside
from glacier.data.spec.sample import sample_dir, sample_path, synthetic_data_spec
from glacier.data.spec.scene_config import BandSource, DateFilter, LabelSource, SceneSpec
from glacier.data.spec.synthetic import (
    SyntheticDataset,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
)

__all__ = [
    "BandSource",
    "DataSpec",
    "DateFilter",
    "LabelSource",
    "Retreat",
    "SceneSpec",
    "SyntheticDataset",
    "apply_retreat",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "largest_inside",
    "sample_dir",
    "sample_path",
    "synthetic_data_spec",
]
