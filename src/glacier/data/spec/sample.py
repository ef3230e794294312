"""Where the embedded real sample and user data live.

The default dataset (``data=everest``) is a real Landsat 7 ETM+ crop of the Everest/Khumbu area
with RGI 6.0 glacier outlines. It ships inside the PyPI wheel ``geoutils==0.0.8`` (a dependency of
glacier); we locate its data files without importing geoutils.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from glacier.data.spec.data_spec import DataSpec
from glacier.errors import GlacierFileNotFoundError

SAMPLE_PACKAGE = "geoutils"
SAMPLE_FILES = (
    "LE71400412000304SGS00_RGB.TIF",
    "LE71400412000304SGS00_B4_crop.TIF",
    "glacier_outlines.gpkg",
)
INSTALL_HINT = "install it with `pip install geoutils==0.0.8` (a dependency of glacier)"
SYNTHETIC_WAIT_SECONDS = 600.0  # other ranks of a distributed run wait for rank 0 to generate


def sample_dir() -> Path:
    """Return the folder holding the embedded Everest sample.

    Returns:
        The ``geoutils/datasets`` folder of the installed wheel.

    Raises:
        GlacierFileNotFoundError: If the wheel is not installed or lacks the files.
    """
    spec = importlib.util.find_spec(SAMPLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GlacierFileNotFoundError(
            f"The Everest sample data package '{SAMPLE_PACKAGE}' is not installed; {INSTALL_HINT}."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets"
    missing = [name for name in SAMPLE_FILES if not (folder / name).is_file()]
    if missing:
        raise GlacierFileNotFoundError(
            f"The sample folder {folder} lacks {', '.join(missing)}; {INSTALL_HINT}."
        )
    return folder


def sample_path(name: str) -> str:
    """Return the path of one embedded sample file (used by the ``glacier_sample`` resolver).

    Args:
        name: File name inside the sample folder.

    Returns:
        The absolute path as a string.

    Raises:
        GlacierFileNotFoundError: If the file is not part of the sample.
    """
    path = sample_dir() / name
    if not path.is_file():
        raise GlacierFileNotFoundError(f"{name} is not part of the Everest sample ({path}).")
    return str(path)


def synthetic_data_spec(
    out_dir: str,
    width: int = 320,
    height: int = 256,
    seed: int = 0,
    **spec: Any,
) -> DataSpec:
    """Generate the synthetic dataset when missing and describe it as a :class:`DataSpec`.

    The scene file holds bands ``blue, green, red, nir, swir1, swir2``; clean-ice outlines are
    stored in the scene CRS and debris outlines in EPSG:4326.

    Args:
        out_dir: Where the generated files live.
        width: Scene width in pixels.
        height: Scene height in pixels.
        seed: Generator seed.
        **spec: Remaining :class:`DataSpec` arguments (name, classes, slicing, ...).

    Returns:
        The dataset description.
    """
    from glacier.data.spec.synthetic import ensure_synthetic_dataset, find_synthetic_dataset
    from glacier.utils.cluster import is_rank_zero, wait_until

    if not is_rank_zero():  # rank 0 of a multi-process run writes the files; the others wait

        def missing() -> list[str]:
            found = find_synthetic_dataset(Path(out_dir), width, height, seed)
            return [] if found is not None else [out_dir]

        wait_until(missing, SYNTHETIC_WAIT_SECONDS, 0.5, "rank 0 to generate the synthetic data")
    generated = ensure_synthetic_dataset(Path(out_dir), width=width, height=height, seed=seed)
    scene = {
        "id": "synthetic",
        "sources": [{"path": str(generated.scene), "bands": list(generated.band_names)}],
    }
    labels = [
        {"path": str(generated.clean_ice), "class_name": "clean_ice"},
        {"path": str(generated.debris), "class_name": "debris"},
    ]
    spec.setdefault("dem", str(generated.dem) if generated.dem else None)
    return DataSpec(scenes=[scene], labels=labels, **spec)
