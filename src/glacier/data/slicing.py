"""Cut scenes and their masks into image/label slice pairs with true ground footprints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from glacier.data.masks import NODATA_LABEL
from glacier.data.scene import open_scene
from glacier.data.spec import DataSpec, SceneSpec
from glacier.utils.io import remove_stale_temps, save_npy_atomic


def window_starts(length: int, size: int, overlap: int) -> list[int]:
    """Offsets of windows of ``size`` with ``overlap`` covering ``length`` pixels.

    The last window may extend past the edge; that remainder is padded, never dropped.

    Args:
        length: Scene extent in pixels.
        size: Window extent.
        overlap: Pixels shared by neighbours.

    Returns:
        Window start offsets.
    """
    stride = size - overlap
    return list(range(0, max(length - overlap, 1), stride))


def _padded_labels(mask: np.ndarray, row: int, size: int, cols: int) -> np.ndarray:
    """Rows ``row..row+size`` of the mask, padded with nodata to ``(size, cols, K)``."""
    out = np.full((size, cols, mask.shape[2]), NODATA_LABEL, dtype=np.uint8)
    part = mask[row : row + size, :cols]
    out[: part.shape[0], : part.shape[1]] = part
    return out


def slice_record(image: np.ndarray, label: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Summary statistics of one slice pair stored in ``slices.geojson``.

    Args:
        image: (S, S, C) float32 image, NaN where nodata.
        label: (S, S, K) uint8 label, 255 where nodata.
        classes: Class names, one per label channel.

    Returns:
        ``mask_mean_{class}`` (fraction of valid pixels), ``img_mean`` and ``nodata_frac``.
    """
    valid = label[..., 0] != NODATA_LABEL
    count = int(valid.sum())
    record = {"nodata_frac": float(1.0 - count / valid.size)}
    for index, name in enumerate(classes):
        record[f"mask_mean_{name}"] = float(label[..., index][valid].mean()) if count else 0.0
    record["img_mean"] = float(image[valid].mean()) if count else float("nan")
    return record


def write_pair_slices(
    spec: DataSpec, scene: SceneSpec, mask_path: Path, processed_dir: Path
) -> list[dict[str, Any]]:
    """Write ``slices/slice_{id}_img_{k}.npy`` and ``..._label_{k}.npy`` for one scene.

    Reads one strip of tile rows at a time, so memory is bounded by ``slice_size`` × width.

    Args:
        spec: The dataset description (slice size, overlap, derived channels).
        scene: The scene to slice.
        mask_path: Its ``mask_{id}.npy``.
        processed_dir: Output root.

    Returns:
        One record per slice: ids, offsets, footprint bounds in the scene CRS, statistics.
    """
    size, overlap = spec.slice_size, spec.overlap
    out_dir = processed_dir / "slices"
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"slice_{scene.id}_*.npy"):
        stale.unlink()
    remove_stale_temps(out_dir, f"slice_{scene.id}_")
    mask = np.load(mask_path, mmap_mode="r")
    records: list[dict[str, Any]] = []
    with open_scene(scene, spec) as reader:
        col_starts = window_starts(reader.width, size, overlap)
        cover = col_starts[-1] + size
        for row in window_starts(reader.height, size, overlap):
            strip = reader.read(Window(0, row, cover, size))
            strip = np.moveaxis(strip, 0, -1)
            labels = _padded_labels(mask, row, size, cover)
            labels[np.isnan(strip).any(axis=-1)] = NODATA_LABEL
            for col in col_starts:
                k = len(records)
                image = np.ascontiguousarray(strip[:, col : col + size])
                label = np.ascontiguousarray(labels[:, col : col + size])
                save_npy_atomic(out_dir / f"slice_{scene.id}_img_{k}.npy", image)
                save_npy_atomic(out_dir / f"slice_{scene.id}_label_{k}.npy", label)
                window = Window(col, row, size, size)
                left, bottom, right, top = window_bounds(window, reader.transform)
                records.append(
                    {
                        "scene": scene.id,
                        "slice": k,
                        "row_off": row,
                        "col_off": col,
                        "size": size,
                        "crs": reader.crs.to_string(),
                        "x_min": left,
                        "y_min": bottom,
                        "x_max": right,
                        "y_max": top,
                        "image": f"slices/slice_{scene.id}_img_{k}.npy",
                        "label": f"slices/slice_{scene.id}_label_{k}.npy",
                        **slice_record(image, label, spec.classes),
                    }
                )
    return records
