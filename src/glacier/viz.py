"""Figures for people: training panels, full-scene overlays, uncertainty quality."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from glacier.data.contract import IGNORE_INDEX

CLASS_COLOURS = ("#000000", "#00e5ff", "#ff8c00", "#ff00ff", "#7fff00")
NODATA_GREY = "#808080"
MEASURE_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


def to_display_rgb(image: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Percentile-stretched RGB (H, W, 3) in [0, 1] from three channels of a (C, H, W) array.

    Args:
        image: Normalized or raw image, channels first.
        indices: Channels shown as red, green, blue.

    Returns:
        The display image.
    """
    rgb = np.moveaxis(np.asarray(image, dtype=np.float32)[list(indices)], 0, -1)
    finite = rgb[np.isfinite(rgb).all(axis=-1)]
    if not len(finite):
        return np.zeros(rgb.shape, dtype=np.float32)
    low, high = np.percentile(finite, [2, 98], axis=0)
    stretched: np.ndarray = np.clip((np.nan_to_num(rgb) - low) / np.maximum(high - low, 1e-6), 0, 1)
    return stretched


def _class_cmap(classes: int) -> ListedColormap:
    colours = list(CLASS_COLOURS[: max(classes, 2)])
    return ListedColormap([*colours, NODATA_GREY])


def _show_classes(axis: Axes, classes: np.ndarray, count: int, title: str) -> None:
    shown = np.where(classes == IGNORE_INDEX, count, classes)
    axis.imshow(shown, cmap=_class_cmap(count), vmin=0, vmax=count, interpolation="nearest")
    axis.set_title(title)


def tile_panel(
    rgb: np.ndarray,
    label: np.ndarray,
    prediction: np.ndarray,
    uncertainty: np.ndarray | None = None,
) -> Figure:
    """One row: input RGB, label (nodata grey), prediction and, optionally, uncertainty.

    Args:
        rgb: (H, W, 3) display image in [0, 1].
        label: (H, W) reference classes (255 = nodata).
        prediction: (H, W) predicted classes.
        uncertainty: (H, W) MC-dropout spread, or None.

    Returns:
        The figure (close it after saving).
    """
    valid = label[label != IGNORE_INDEX]
    count = int(max(valid.max() if valid.size else 0, prediction.max(), 1)) + 1
    columns = 4 if uncertainty is not None else 3
    # Figure objects, not pyplot: no backend to choose, no global state (panels and overlays are
    # drawn on worker threads), nothing to close
    figure = Figure(figsize=(3 * columns, 3.2))
    axes = figure.subplots(1, columns)
    axes[0].imshow(rgb)
    axes[0].set_title("input")
    _show_classes(axes[1], label, count, "label")
    _show_classes(axes[2], prediction, count, "prediction")
    if uncertainty is not None:
        shown = axes[3].imshow(uncertainty, cmap="magma", vmin=0)
        axes[3].set_title("MC-dropout std")
        figure.colorbar(shown, ax=axes[3], fraction=0.046)
    for axis in axes:
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def _extent(transform: Affine, height: int, width: int) -> tuple[float, float, float, float]:
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    return left, right, bottom, top


def overlay_png(
    rgb: np.ndarray,
    polygons: gpd.GeoDataFrame,
    out_path: Path,
    *,
    transform: Affine,
    reference: np.ndarray | None = None,
    reference_transform: Affine | None = None,
    title: str | None = None,
) -> Path:
    """Draw the scene with predicted outlines (and reference outlines) in map coordinates.

    Args:
        rgb: (h, w, 3) uint8 preview.
        polygons: Predicted polygons with a ``class`` column, in the scene CRS.
        out_path: PNG to write (atomically).
        transform: The preview's geotransform.
        reference: Reference class map (0 background, 255 nodata) on the scene grid.
        reference_transform: Its geotransform.
        title: Figure title.

    Returns:
        ``out_path``.
    """
    height, width = rgb.shape[:2]
    figure = Figure(figsize=(10, 10 * height / max(width, 1) + 0.6))
    axis = figure.subplots()
    axis.imshow(rgb, extent=_extent(transform, height, width))
    handles = []
    for index, (name, group) in enumerate(polygons.groupby("class", sort=True)):
        colour = CLASS_COLOURS[1 + index % (len(CLASS_COLOURS) - 1)]
        group.boundary.plot(ax=axis, color=colour, linewidth=0.8)
        handles.append(Line2D([], [], color=colour, label=f"predicted {name}"))
    if reference is not None and reference_transform is not None:
        glacier = np.where(reference == IGNORE_INDEX, 0, reference > 0).astype(float)
        ref_h, ref_w = reference.shape
        left, right, bottom, top = _extent(reference_transform, ref_h, ref_w)
        xs = np.linspace(left, right, ref_w)
        ys = np.linspace(top, bottom, ref_h)
        axis.contour(xs, ys, glacier, levels=[0.5], colors="yellow", linewidths=0.6)
        handles.append(Line2D([], [], color="yellow", label="reference"))
    if handles:
        axis.legend(handles=handles, loc="lower right", fontsize=8)
    axis.set_title(title or out_path.stem)
    axis.ticklabel_format(useOffset=False, style="plain")
    figure.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.partial.png")
    figure.savefig(tmp, dpi=120)
    os.replace(tmp, out_path)
    return out_path


ReliabilityRow = tuple[float, float, float | None, float | None, int]  # lower, upper, conf, acc, n


def _draw_deciles(
    axis: Axes,
    error_by_decile: Mapping[str, Sequence[float | None]],
    error_rate: float | None,
    written: str | None,
) -> None:
    """Error rate by uncertainty decile, one line per measure (``written`` bold, on top)."""
    ticks = np.arange(1, 11)
    for index, (name, rates) in enumerate(error_by_decile.items()):
        values = [np.nan if r is None else r for r in rates]
        bold = name == written
        axis.plot(
            ticks,
            values,
            marker="os^D"[index % 4],
            color=MEASURE_COLOURS[index % 4],
            label=name,
            linewidth=3 if bold else 1.2,
            markersize=7 if bold else 4,
            zorder=3 if bold else 2,
        )
    if error_rate is not None:
        axis.axhline(error_rate, color="grey", linestyle="--", label="map's error rate")
    axis.set_xticks(ticks)
    axis.set_xlabel("uncertainty decile (1 = most certain tenth of the pixels)")
    axis.set_ylabel("share of wrong pixels")
    axis.set_title("error rate by uncertainty decile")
    axis.legend(fontsize=8)


def _draw_reliability(axis: Axes, reliability: Mapping[str, Sequence[ReliabilityRow]]) -> None:
    """A reliability diagram, one line per calibration, from the lowest populated bin up."""
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for index, (name, rows) in enumerate(reliability.items()):
        used = [(r[2], r[3]) for r in rows if r[4] and r[2] is not None and r[3] is not None]
        colour = ("#d62728", "#7f7f7f")[index % 2]
        axis.plot([c for c, _ in used], [a for _, a in used], marker="s", color=colour, label=name)
    lowest = min((r[0] for rows in reliability.values() for r in rows if r[4]), default=0.0)
    axis.set_xlim(lowest, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (largest mean class probability)")
    axis.set_ylabel("accuracy")
    axis.set_title("reliability (10 confidence bins)")
    axis.legend(fontsize=8, loc="upper left")


def uncertainty_png(
    out_path: Path,
    error_by_decile: Mapping[str, Sequence[float | None]],
    error_rate: float | None,
    reliability: Mapping[str, Sequence[ReliabilityRow]],
    title: str,
    written: str | None = None,
) -> Path:
    """Draw error rate by uncertainty decile per measure and a reliability diagram.

    Args:
        out_path: PNG to write (atomically).
        error_by_decile: Per measure (legend label), the error rate of each tenth of the
            pixels, most certain first.
        error_rate: The map's error rate (a useless measure's flat line).
        reliability: Per calibration (legend label), its rows: bin edges, mean confidence,
            accuracy and pixels.
        title: Figure title.
        written: The label of the measure written as the map's uncertainty (drawn on top, bold;
            measures that rank pixels alike, e.g. 1 − max and entropy for two classes, overlap).

    Returns:
        ``out_path``.
    """
    figure = Figure(figsize=(11, 4.2))
    deciles, diagram = figure.subplots(1, 2)
    _draw_deciles(deciles, error_by_decile, error_rate, written)
    _draw_reliability(diagram, reliability)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.partial.png")
    figure.savefig(tmp, dpi=100)
    os.replace(tmp, out_path)
    return out_path
