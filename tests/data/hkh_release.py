"""A miniature of the published HKH glacier mapping release (LILA), in its real on-disk format.

The layout, names, dtypes and defects follow what public sources show of the release: real
release files in ``stactools-packages/lila-hkh-glacier`` (branch ``feature/slices``,
``tests/data-files/``: two slices.geojson features, a clip of tile 134/040, two mask slices) and
the code that made it, ``krisrs1128/glacier_mapping`` (``glacier_mapping/data/slice.py``,
``mask.py``, ``process_slices_funs.py``, ``conf/masking_paths.yaml``):

```
glacier_data/
  README.md
  raster_data/LE07_PPPRRR_YYYYMMDD.tif   15 float32 bands, native UTM zone, 30 m, no nodata tag;
                                          0 in every band outside the Landsat scene, no NaN
  vector_data/hkh.shp (+.dbf .shx .prj .cpg)   ICIMOD Glacier_2005 outlines, EPSG:4326,
                                          ``Glaciers`` ("Clean Ice"/"Debris covered"), ``GLIMS_ID``
  vector_data/clean.shp, debris.shp      hkh.shp split on ``Glaciers``
  masks/mask_{t:02}.npy, border_{t:02}.npy, mask_metadata.csv   (per the predecessor's code)
  slices/slice_{t}_img_{k:03}.npy        S×S×15 float32 (NaN outside the HKH border)
  slices/slice_{t}_mask_{k:03}.npy       S×S×3 uint8: all glaciers, clean ice, debris
  slices/slices.geojson                  one feature per slice, predecessor's defects included
  splits/{train,dev,test}/               copies of a few slices, imputed and z-scored;
                                          masks [clean, debris, background]
```

``t`` is the tile's position in the predecessor's ``conf/masking_paths.yaml`` (0–34, e.g.
``LE07_149036_20071102`` is 6) — not the tile name — and ``k`` the row-major index of the
S-pixel window at an (S − 6)-pixel step from the tile's top-left corner (512/506 in the release),
partial windows dropped. The defects of ``slices.geojson`` are reproduced: absolute paths of the
exporting machine (``/datadrive/glaciers/...``), ``EPSG:32643`` declared for every feature
whatever the tile's zone, and boxes built by the predecessor's ``slice_polys`` (north–south
mirrored within the tile, step-sized, stretched by W/(W−1)). :func:`true_footprint` gives the
real footprint of a slice for comparison.

Usage::

    files = write_hkh_release(tmp_path, patch_size=64, step=58)  # ~3 MB, for tests
    files = write_hkh_release(tmp_path)                          # real 512/506 (~300 MB)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box

PIXEL_SIZE = 30.0
BAND_NAMES = (
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6_VCID_1",
    "B6_VCID_2",
    "B7",
    "B8",
    "BQA",
    "ndvi",
    "ndsi",
    "ndwi",
    "elevation",
    "slope",
)
RELEASE_PATCH_SIZE = 512
RELEASE_STEP = 506  # 512 − overlap 6
DECLARED_CRS = "EPSG:32643"
VECTOR_CRS = "EPSG:4326"
EXPORT_ROOT = "/datadrive/glaciers"  # the exporting machine's data directory
CLEAN, DEBRIS = "Clean Ice", "Debris covered"
MASK_CHANNELS = ("glaciers", "clean_ice", "debris")
SPLIT_MASK_CHANNELS = ("clean_ice", "debris", "background")
SLICE_PROPERTIES = (
    "img_source",
    "mask_source",
    "img_slice",
    "mask_slice",
    "mask_mean_0",
    "mask_mean_1",
    "mask_mean_2",
    "img_mean",
)
# BQA (Collection 1 quality bits) values seen on valid pixels of the release's tile 134/040.
BQA_CLEAR = (672.0, 704.0, 752.0, 756.0, 760.0)
BQA_SNOW = (1696.0, 1700.0, 1704.0, 1728.0, 1732.0, 1736.0)
BQA_MIXED = (672.0, 752.0, 928.0, 932.0, 936.0, 960.0)

_B = {name: i for i, name in enumerate(BAND_NAMES)}


@dataclass(frozen=True)
class TileSpec:
    """One Landsat tile of the miniature.

    Args:
        name: Tile name as in the release, ``LE07_PPPRRR_YYYYMMDD``.
        index: The tile's row in the predecessor's ``masking_paths.yaml``; names its slices
            (``slice_{index}_img_{k:03}.npy``) and its masks (``mask_{index:02}.npy``).
        epsg: Native UTM zone of the tile (EPSG code).
        left: Easting of the tile's west edge (a Landsat grid line: an odd multiple of 15 m).
        top: Northing of the tile's north edge.
        windows: Full windows (rows, cols) the tile holds; a remainder smaller than one step
            is added on each axis so that the predecessor drops a partial window there.
        outside_hkh: Whether the tile's north-east part lies outside the HKH border (NaN in
            its slices; window 1 is then entirely NaN).
    """

    name: str
    index: int
    epsg: int
    left: float
    top: float
    windows: tuple[int, int] = (2, 2)
    outside_hkh: bool = False


DEFAULT_TILES: tuple[TileSpec, ...] = (
    # Zone 43 (the zone slices.geojson declares for all): origin of the real tile, whose grid
    # was recovered from its slices.geojson feature. One window, four zero (off-scene) corners.
    TileSpec("LE07_149036_20071102", 6, 32643, 361425.0, 3937395.0, windows=(1, 1)),
    # Zone 45 (Everest region); part of it outside the HKH border.
    TileSpec("LE07_140041_20071221", 22, 32645, 450015.0, 3130815.0, outside_hkh=True),
    # Zone 47: origin of the real clip of this tile in stactools-packages/lila-hkh-glacier.
    TileSpec("LE07_134040_20070922", 30, 32647, 188385.0, 3229845.0),
)


@dataclass(frozen=True)
class Footprint:
    """A rectangle on the ground: its CRS and bounds (minx, miny, maxx, maxy)."""

    crs: str
    bounds: tuple[float, float, float, float]


@dataclass(frozen=True)
class TileFiles:
    """What was written for one tile."""

    spec: TileSpec
    path: Path
    crs: str
    transform: Affine
    width: int
    height: int
    n_rows: int
    n_cols: int
    slice_prefix: str
    hkh_border: Polygon | None  # part of the tile inside the HKH border (tile CRS); None = all


@dataclass(frozen=True)
class HkhReleaseFiles:
    """What :func:`write_hkh_release` wrote (paths are under ``root``)."""

    root: Path
    patch_size: int
    step: int
    tiles: tuple[TileFiles, ...]
    slice_images: tuple[Path, ...]
    slice_masks: tuple[Path, ...]
    slices_geojson: Path
    hkh_shp: Path
    clean_shp: Path
    debris_shp: Path
    masks_dir: Path
    splits: Mapping[str, tuple[Path, ...]]  # split → image paths (masks: ``_img_`` → ``_mask_``)
    all_nan_slices: tuple[str, ...]  # basenames of image slices that are NaN everywhere
    zero_corner_slices: tuple[str, ...]  # basenames of image slices with all four corners 0

    def tile(self, name: str) -> TileFiles:
        """The tile called ``name``."""
        return next(t for t in self.tiles if t.spec.name == name)


def tile_shape(
    spec: TileSpec, patch_size: int = RELEASE_PATCH_SIZE, step: int = RELEASE_STEP
) -> tuple[int, int]:
    """(height, width) in pixels of a miniature tile: its full windows plus a partial remainder.

    At the release's 512/506 a 2×2-window tile is 1030×1100 px.
    """
    if not 0 < step <= patch_size:
        raise ValueError(f"need 0 < step <= patch_size, got {step=} {patch_size=}")
    rows, cols = spec.windows
    rem_rows = max(1, step * 12 // RELEASE_STEP)
    rem_cols = max(1, step * 82 // RELEASE_STEP)
    height = patch_size + step * (rows - 1) + rem_rows
    width = patch_size + step * (cols - 1) + rem_cols
    for size, n in ((height, rows), (width, cols)):
        if window_count(size, patch_size, step) != n or _box_count(size, step) != n:
            raise ValueError(f"tile size {size} does not give {n} windows at {patch_size}/{step}")
    return height, width


def window_count(size: int, patch_size: int = RELEASE_PATCH_SIZE, step: int = RELEASE_STEP) -> int:
    """Full windows along one axis of ``size`` pixels (``view_as_windows``; partial dropped)."""
    return max(0, (size - patch_size) // step + 1)


def window_position(
    k: int, width: int, patch_size: int = RELEASE_PATCH_SIZE, step: int = RELEASE_STEP
) -> tuple[int, int]:
    """(row, col) of the top-left pixel of window ``k`` of a tile ``width`` pixels wide.

    ``k`` runs row-major over the windows: ``i, j = divmod(k, n_cols)``, offset
    ``(i * step, j * step)``.
    """
    i, j = divmod(k, window_count(width, patch_size, step))
    return i * step, j * step


def true_footprint(
    tile_path: Path, k: int, *, patch_size: int = RELEASE_PATCH_SIZE, step: int = RELEASE_STEP
) -> Footprint:
    """The ground footprint of slice ``k`` of a tile, computed from the tile's own grid.

    Args:
        tile_path: The tile GeoTIFF (``raster_data/*.tif``).
        k: The slice's window index (the ``{k:03}`` of its file name).
        patch_size: Window size in pixels (512 in the release).
        step: Window step in pixels (506 in the release).

    Returns:
        The tile's CRS and the window's bounds (north-up; row 0 is the tile's north edge).
    """
    with rasterio.open(tile_path) as src:
        transform, width, crs = src.transform, src.width, src.crs
    row, col = window_position(k, width, patch_size, step)
    x0, y0 = transform @ (col, row)
    x1, y1 = transform @ (col + patch_size, row + patch_size)
    return Footprint(crs=str(crs), bounds=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))


def release_boxes(
    bounds: tuple[float, float, float, float],
    width: int,
    height: int,
    step: int = RELEASE_STEP,
) -> list[tuple[float, float, float, float]]:
    """The boxes the predecessor's ``slice_polys`` wrote into ``slices.geojson``, in order.

    ``ix = arange(0, size, step)``; ``lats = linspace(bottom, top, height)`` (row index counted
    from the *south* edge: mirrored north–south) and ``longs = linspace(left, right, width)``
    (spacing 30·W/(W−1), not 30); box (i, j) spans ``ix[i]..ix[i+1]`` × ``ix[j]..ix[j+1]``,
    for i < len(ix_row) − 1, j < len(ix_col) − 1.

    Args:
        bounds: The tile's (left, bottom, right, top).
        width: Tile width in pixels.
        height: Tile height in pixels.
        step: Window step (506 in the release).

    Returns:
        (minx, miny, maxx, maxy) per box, row-major like the slices.
    """
    left, bottom, right, top = bounds
    ix_row = np.arange(0, height, step)
    ix_col = np.arange(0, width, step)
    lats = np.linspace(bottom, top, height)
    longs = np.linspace(left, right, width)
    return [
        (
            float(longs[ix_col[j]]),
            float(lats[ix_row[i]]),
            float(longs[ix_col[j + 1]]),
            float(lats[ix_row[i + 1]]),
        )
        for i in range(len(ix_row) - 1)
        for j in range(len(ix_col) - 1)
    ]


def parse_slice_name(name: str) -> tuple[int, str, int]:
    """``slice_6_img_072.npy`` → (6, "img", 72): tile index, kind, window index."""
    stem = Path(name).name.removesuffix(".npy")
    prefix, tile, kind, k = stem.split("_")
    if prefix != "slice" or kind not in ("img", "mask"):
        raise ValueError(f"not a release slice name: {name}")
    return int(tile), kind, int(k)


def write_hkh_release(
    root: Path,
    *,
    tiles: Sequence[TileSpec] = DEFAULT_TILES,
    patch_size: int = RELEASE_PATCH_SIZE,
    step: int = RELEASE_STEP,
    seed: int = 0,
) -> HkhReleaseFiles:
    """Write a miniature of the HKH release under ``root/glacier_data``.

    Args:
        root: Folder to write into (``glacier_data/`` is created in it).
        tiles: The tiles to write (at least two zones by default: 43, 45, 47).
        patch_size: Slice size (512 in the release; e.g. 64 for fast tests).
        step: Window step (506 in the release, i.e. patch_size − 6; e.g. 58 with 64).
        seed: Seed of the random radiometry.

    Returns:
        The written files and the slices with special content.
    """
    data = Path(root) / "glacier_data"
    dirs = {name: data / name for name in ("raster_data", "vector_data", "masks", "slices")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    (data / "README.md").write_text(_README)

    layouts = [_layout(spec, patch_size, step) for spec in sorted(tiles, key=lambda t: t.index)]
    outlines = _outlines(layouts)
    vector = _write_vectors(outlines, dirs["vector_data"])

    tile_files: list[TileFiles] = []
    images: list[Path] = []
    masks: list[Path] = []
    features: list[dict[str, Any]] = []
    all_nan: list[str] = []
    zero_corners: list[str] = []
    mask_rows: list[list[Any]] = []
    for layout in layouts:
        spec = layout.spec
        rng = np.random.default_rng([seed, spec.index])
        label = _burn(layout, vector)  # (H, W, 3): Glacier_2005 (all), clean, debris
        border = _burn_border(layout)  # (H, W, 1)
        image = _radiometry(layout, label, rng)
        path = dirs["raster_data"] / f"{spec.name}.tif"
        _write_tile(path, image, layout)
        mask_path = dirs["masks"] / f"mask_{spec.index:02}.npy"
        border_path = dirs["masks"] / f"border_{spec.index:02}.npy"
        np.save(mask_path, label)
        np.save(border_path, border)
        mask_rows.append(
            [
                spec.index,
                f"{EXPORT_ROOT}/unique_tiles/{spec.name}.tif",
                f"{EXPORT_ROOT}/processed/masks/mask_{spec.index:02}.npy",
                f"{EXPORT_ROOT}/processed/masks/border_{spec.index:02}.npy",
                layout.width,
                layout.height,
                label.shape[1],
                label.shape[0],
            ]
        )

        # The predecessor's write_pair_slices: NaN outside the border (every channel), labels
        # zeroed where band 1 is NaN, windows row-major, partial windows dropped.
        clipped = np.moveaxis(image, 0, -1).copy()
        clipped[border[..., 0] == 0] = np.nan
        label = label.copy()
        label[np.isnan(clipped[..., 0])] = 0
        boxes = release_boxes(layout.bounds, layout.width, layout.height, step)
        prefix = f"slice_{spec.index}"
        for k in range(layout.n_rows * layout.n_cols):
            row, col = window_position(k, layout.width, patch_size, step)
            window = np.s_[row : row + patch_size, col : col + patch_size]
            img = np.ascontiguousarray(clipped[window])
            msk = np.ascontiguousarray(label[window])
            img_name, mask_name = f"{prefix}_img_{k:03}.npy", f"{prefix}_mask_{k:03}.npy"
            np.save(dirs["slices"] / img_name, img)
            np.save(dirs["slices"] / mask_name, msk)
            images.append(dirs["slices"] / img_name)
            masks.append(dirs["slices"] / mask_name)
            if np.isnan(img).all():
                all_nan.append(img_name)
            corners = img[[0, 0, -1, -1], [0, -1, 0, -1]]
            if (corners == 0).all():
                zero_corners.append(img_name)
            mask_mean = msk.mean(axis=(0, 1))
            properties: dict[str, Any] = {
                "img_source": f"{EXPORT_ROOT}/unique_tiles/{spec.name}.tif",
                "mask_source": f"{EXPORT_ROOT}/processed/masks/mask_{spec.index:02}.npy",
                "img_slice": f"{EXPORT_ROOT}/processed/slices/{img_name}",
                "mask_slice": f"{EXPORT_ROOT}/processed/slices/{mask_name}",
                **{f"mask_mean_{c}": float(v) for c, v in enumerate(mask_mean)},
                "img_mean": float(np.nan_to_num(img).mean()),
            }
            features.append({"properties": properties, "box": boxes[k]})
        tile_files.append(
            TileFiles(
                spec=spec,
                path=path,
                crs=f"EPSG:{spec.epsg}",
                transform=layout.transform,
                width=layout.width,
                height=layout.height,
                n_rows=layout.n_rows,
                n_cols=layout.n_cols,
                slice_prefix=prefix,
                hkh_border=layout.border_crs,
            )
        )

    _write_mask_metadata(dirs["masks"] / "mask_metadata.csv", mask_rows)
    geojson = dirs["slices"] / "slices.geojson"
    _write_slices_geojson(geojson, features)
    splits = _write_splits(data / "splits", images, features, set(all_nan))
    return HkhReleaseFiles(
        root=data,
        patch_size=patch_size,
        step=step,
        tiles=tuple(tile_files),
        slice_images=tuple(images),
        slice_masks=tuple(masks),
        slices_geojson=geojson,
        hkh_shp=vector["hkh"],
        clean_shp=vector["clean"],
        debris_shp=vector["debris"],
        masks_dir=dirs["masks"],
        splits=splits,
        all_nan_slices=tuple(all_nan),
        zero_corner_slices=tuple(zero_corners),
    )


# ---------------------------------------------------------------------------------------------
# internals


@dataclass(frozen=True)
class _Layout:
    spec: TileSpec
    patch_size: int
    step: int
    height: int
    width: int
    n_rows: int
    n_cols: int
    transform: Affine
    bounds: tuple[float, float, float, float]
    scene: Polygon  # inside the Landsat scene, pixel coordinates (col, row)
    outside: Polygon | None  # outside the HKH border, pixel coordinates
    border_crs: Polygon | None  # inside the HKH border, tile CRS


def _layout(spec: TileSpec, patch_size: int, step: int) -> _Layout:
    height, width = tile_shape(spec, patch_size, step)
    transform = from_origin(spec.left, spec.top, PIXEL_SIZE, PIXEL_SIZE)
    bounds = (spec.left, spec.top - height * PIXEL_SIZE, spec.left + width * PIXEL_SIZE, spec.top)
    # The scene is a rotated rectangle inside the north-up tile: zero wedges at all four corners.
    w, h = float(width), float(height)
    a, b = 0.2 + _shift(spec) / 2, 0.12 - _shift(spec) / 2
    scene = Polygon([(a * w, 0.0), (w, b * h), ((1 - a) * w, h), (0.0, (1 - b) * h)])
    outside = border_crs = None
    if spec.outside_hkh:
        # North-east of the tile is outside HKH: window (0, 1) entirely, (0, 0) and (1, 1) in part.
        d1, d2 = max(1, patch_size // 16), max(2, patch_size // 8)
        outside = Polygon(
            [(step, -1.0), (w + 1, -1.0), (w + 1, patch_size + d2), (step, patch_size + d1)]
        )
        inside = box(0, 0, w, h).difference(outside)
        border_crs = _to_crs_coords(inside, transform)
    return _Layout(
        spec=spec,
        patch_size=patch_size,
        step=step,
        height=height,
        width=width,
        n_rows=window_count(height, patch_size, step),
        n_cols=window_count(width, patch_size, step),
        transform=transform,
        bounds=bounds,
        scene=scene,
        outside=outside,
        border_crs=border_crs,
    )


def _shift(spec: TileSpec) -> float:
    """A small tile-dependent offset (fraction of the tile) so that tiles differ."""
    return (spec.index * 7 % 5) * 0.01


def _to_crs_coords(geom: Any, transform: Affine) -> Any:
    a, b, c, d, e, f = transform[:6]
    return affinity.affine_transform(geom, [a, b, d, e, c, f])


def _box_count(size: int, step: int) -> int:
    return math.ceil(size / step) - 1


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> Polygon:
    circle = shapely.Point(cx, cy).buffer(1.0, quad_segs=8)
    return affinity.rotate(affinity.scale(circle, rx, ry), angle)


def _outlines(layouts: Sequence[_Layout]) -> gpd.GeoDataFrame:
    """ICIMOD-style outlines (EPSG:4326) over every tile, placed in tile-relative positions."""
    rows: list[dict[str, Any]] = []
    for layout in layouts:
        w, h = float(layout.width), float(layout.height)
        shift = _shift(layout.spec)

        def px(
            geom: Any, w: float = w, h: float = h, layout: _Layout = layout, shift: float = shift
        ) -> Any:
            # unit square (u = col / W, v = row / H), moved a little per tile → tile CRS
            moved = affinity.translate(geom, shift, shift / 2)
            return _to_crs_coords(affinity.scale(moved, w, h, origin=(0, 0)), layout.transform)

        clean_a = _ellipse(0.40, 0.70, 0.16, 0.13, 20).difference(_ellipse(0.40, 0.70, 0.04, 0.03))
        debris_a = _ellipse(0.55, 0.86, 0.10, 0.05, -25).difference(clean_a)
        clean_b = _ellipse(0.08, 0.40, 0.07, 0.09)  # crosses the scene's western edge
        clean_c = MultiPolygon(
            [_ellipse(0.66, 0.22, 0.07, 0.06), _ellipse(0.86, 0.36, 0.05, 0.07, 30)]
        )
        debris_d = _ellipse(0.76, 0.66, 0.07, 0.05, 10)
        parts = [
            (clean_a, CLEAN, "a"),  # with a hole (nunatak)
            (debris_a, DEBRIS, "a"),  # the same glacier's debris tongue: same GLIMS_ID
            (clean_b, CLEAN, "b"),
            (clean_c, CLEAN, "c"),  # a MultiPolygon
            (debris_d, DEBRIS, "d"),
        ]
        for geom, kind, glacier in parts:
            rows.append(
                {"Glaciers": kind, "glacier": f"{layout.spec.index}{glacier}", "geometry": px(geom)}
            )
        frame = gpd.GeoDataFrame(rows[-len(parts) :], crs=f"EPSG:{layout.spec.epsg}")
        lonlat = frame.to_crs(VECTOR_CRS)
        for row, geom in zip(rows[-len(parts) :], lonlat.geometry, strict=True):
            row["geometry"] = geom
    frame = gpd.GeoDataFrame(rows, crs=VECTOR_CRS)
    first = frame.groupby("glacier").geometry.transform("first")
    frame["GLIMS_ID"] = [_glims_id(g) for g in first]
    return frame.drop(columns="glacier")[["Glaciers", "GLIMS_ID", "geometry"]]


def _glims_id(geom: Any) -> str:
    point = geom.representative_point()
    return f"G{round(point.x * 1000):06d}E{round(point.y * 1000):05d}N"


def _write_vectors(outlines: gpd.GeoDataFrame, folder: Path) -> dict[str, Path]:
    paths = {name: folder / f"{name}.shp" for name in ("hkh", "clean", "debris")}
    outlines.to_file(paths["hkh"])
    outlines[outlines["Glaciers"] == CLEAN].to_file(paths["clean"])
    outlines[outlines["Glaciers"] == DEBRIS].to_file(paths["debris"])
    return paths


def _burn(layout: _Layout, vector: Mapping[str, Path]) -> np.ndarray:
    """Predecessor's generate_mask: [Glacier_2005, clean, debris], exteriors only (holes filled)."""
    crs = f"EPSG:{layout.spec.epsg}"
    channels = []
    for name in ("hkh", "clean", "debris"):
        frame = gpd.read_file(vector[name]).to_crs(crs)
        frame = frame[frame.intersects(box(*layout.bounds))]
        shapes = [
            (Polygon(part.exterior), 1)
            for geom in frame.geometry
            for part in getattr(geom, "geoms", [geom])
        ]
        channels.append(_rasterize(shapes, layout, layout.transform))
    return np.stack(channels, axis=-1)


def _burn_border(layout: _Layout) -> np.ndarray:
    if layout.outside is None:
        return np.ones((layout.height, layout.width, 1), dtype=np.uint8)
    inside = box(0, 0, layout.width, layout.height).difference(layout.outside)
    return _rasterize([(inside, 1)], layout, Affine.identity())[..., None]


def _rasterize(shapes: list[tuple[Any, int]], layout: _Layout, transform: Affine) -> np.ndarray:
    if not shapes:
        return np.zeros((layout.height, layout.width), dtype=np.uint8)
    return rasterize(
        shapes, out_shape=(layout.height, layout.width), transform=transform, dtype=np.uint8
    )


def _radiometry(layout: _Layout, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """15 float32 bands: Landsat DNs, BQA, the release's indices, SRTM elevation and slope."""
    h, w = layout.height, layout.width
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = cols / w, rows / h
    clean = label[..., 1] == 1
    debris = (label[..., 2] == 1) & ~clean
    # seasonal snow outside the outlines, and a lake (flat: slope exactly 0)
    snow = ((u - 0.15) ** 2 / 0.01 + (v - 0.85) ** 2 / 0.004 < 1) & ~clean & ~debris
    lake = ((u - 0.63) ** 2 + (v - 0.60) ** 2 < 0.0025) & ~clean & ~debris & ~snow
    saturated = clean & (((u - 0.40) ** 2 + (v - 0.62) ** 2) < 0.0025)  # B1–B4, B8 at 255

    def dn(low: float, high: float) -> np.ndarray:
        return rng.integers(int(low), int(high) + 1, size=(h, w)).astype(np.float32)

    # (background, clean ice, debris, snow, lake) DN ranges per band
    ranges = {
        "B1": ((70, 110), (200, 255), (90, 130), (215, 255), (60, 75)),
        "B2": ((60, 100), (190, 255), (80, 120), (205, 255), (50, 70)),
        "B3": ((55, 100), (180, 255), (75, 120), (200, 255), (35, 50)),
        "B4": ((50, 95), (170, 255), (70, 115), (190, 255), (17, 25)),
        "B5": ((60, 120), (10, 40), (70, 110), (15, 45), (8, 12)),
        "B6_VCID_1": ((100, 120), (70, 90), (95, 115), (72, 92), (90, 100)),
        "B6_VCID_2": ((90, 130), (40, 60), (85, 120), (42, 62), (70, 85)),
        "B7": ((40, 90), (5, 25), (50, 90), (6, 26), (6, 10)),
        "B8": ((60, 100), (200, 255), (80, 120), (210, 255), (20, 35)),
    }
    bands = np.zeros((len(BAND_NAMES), h, w), dtype=np.float32)
    classes = (np.ones((h, w), bool), clean, debris, snow, lake)
    for name, per_class in ranges.items():
        layer = bands[_B[name]]
        for where, (low, high) in zip(classes, per_class, strict=True):
            layer[where] = dn(low, high)[where]
    for name in ("B1", "B2", "B3", "B4", "B8"):
        bands[_B[name]][saturated] = 255.0
    bqa = rng.choice(np.array(BQA_CLEAR, np.float32), size=(h, w))
    bqa[clean | snow] = rng.choice(np.array(BQA_SNOW, np.float32), size=(h, w))[clean | snow]
    bqa[debris] = rng.choice(np.array(BQA_MIXED, np.float32), size=(h, w))[debris]
    bands[_B["BQA"]] = bqa

    b2, b3, b4, b5 = (bands[_B[n]] for n in ("B2", "B3", "B4", "B5"))
    with np.errstate(divide="ignore", invalid="ignore"):
        bands[_B["ndvi"]] = (b4 - b3) / (b4 + b3)
        bands[_B["ndsi"]] = (b5 - b2) / (b5 + b2)
        bands[_B["ndwi"]] = (b4 - b5) / (b4 + b5)

    # SRTM: integer metres falling to the south, with ridges; slope in degrees from its gradient.
    x_m, y_m = cols * PIXEL_SIZE, rows * PIXEL_SIZE
    elevation = (
        4600.0
        - 0.05 * y_m
        + 0.02 * x_m
        + 150.0 * np.sin(2 * np.pi * x_m / 2500.0) * np.cos(2 * np.pi * y_m / 1800.0)
    )
    elevation = np.round(elevation).astype(np.float32)
    elevation[lake] = np.round(elevation[lake].mean())
    dy, dx = np.gradient(elevation.astype(np.float64), PIXEL_SIZE)
    slope = np.degrees(np.arctan(np.hypot(dx, dy))).astype(np.float32)
    bands[_B["elevation"]] = elevation
    bands[_B["slope"]] = slope

    scene = _rasterize([(layout.scene, 1)], layout, Affine.identity()).astype(bool)
    bands[:, ~scene] = 0.0  # outside the Landsat scene: 0 in every band (the export's fill)
    return bands


def _write_tile(path: Path, image: np.ndarray, layout: _Layout) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": len(BAND_NAMES),
        "height": layout.height,
        "width": layout.width,
        "crs": f"EPSG:{layout.spec.epsg}",
        "transform": layout.transform,
        "interleave": "pixel",
        "nodata": None,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)


def _write_mask_metadata(path: Path, rows: list[list[Any]]) -> None:
    """``mask_metadata.csv`` as the predecessor's generate_masks writes it."""
    header = ["id", "img", "mask", "border", "img_width", "img_height", "mask_width", "mask_height"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _number(value: float) -> str:
    text = f"{value:.15f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _write_slices_geojson(path: Path, features: list[dict[str, Any]]) -> None:
    """GDAL-style GeoJSON as in the release: one feature a line, escaped slashes, EPSG:32643."""

    def value(v: Any) -> str:
        return json.dumps(v).replace("/", "\\/") if isinstance(v, str) else repr(float(v))

    lines = []
    for feature in features:
        props = ", ".join(f'"{k}": {value(feature["properties"][k])}' for k in SLICE_PROPERTIES)
        # shapely.box ring: (maxx, miny) → (maxx, maxy) → (minx, maxy) → (minx, miny) → close
        x0, y0, x1, y1 = feature["box"]
        ring = [(x1, y0), (x1, y1), (x0, y1), (x0, y0), (x1, y0)]
        coords = ", ".join(f"[ {_number(x)}, {_number(y)} ]" for x, y in ring)
        lines.append(
            f'{{ "type": "Feature", "properties": {{ {props} }}, '
            f'"geometry": {{ "type": "Polygon", "coordinates": [ [ {coords} ] ] }} }}'
        )
    crs = f"urn:ogc:def:crs:EPSG::{DECLARED_CRS.split(':')[1]}"
    path.write_text(
        "{\n"
        '"type": "FeatureCollection",\n'
        '"name": "slices",\n'
        f'"crs": {{ "type": "name", "properties": {{ "name": "{crs}" }} }},\n'
        '"features": [\n' + ",\n".join(lines) + "\n]\n}\n"
    )


def _write_splits(
    folder: Path, images: list[Path], features: list[dict[str, Any]], all_nan: set[str]
) -> dict[str, tuple[Path, ...]]:
    """A few slices copied and post-processed as the predecessor did.

    ``filter_directory`` (glacier present, ``img_mean > 0``), random split, ``generate_stats``
    (nanmean/nanstd of the raw train slices), then impute NaN → 0, z-score per channel, keep
    the 15 image channels and mask channels [1, 2], add a background channel.
    """
    ranked = sorted(
        (
            (f["properties"]["mask_mean_0"], image)
            for f, image in zip(features, images, strict=True)
            if image.name not in all_nan and f["properties"]["img_mean"] > 0
        ),
        key=lambda item: -item[0],
    )
    chosen = [image for fraction, image in ranked if fraction > 0][:4]
    if len(chosen) < 4:
        raise ValueError("the miniature needs four slices with glaciers for its splits")
    names = {"train": chosen[:2], "dev": chosen[2:3], "test": chosen[3:4]}
    batch = np.stack([np.load(p) for p in names["train"]])
    means, stds = np.nanmean(batch, axis=(0, 1, 2)), np.nanstd(batch, axis=(0, 1, 2))
    out: dict[str, tuple[Path, ...]] = {}
    for split, paths in names.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        written = []
        for image_path in paths:
            img = np.nan_to_num(np.load(image_path), nan=0.0)
            for c in range(img.shape[2]):
                img[:, :, c] -= means[c]
                if stds[c] > 0:
                    img[:, :, c] /= stds[c]
                else:
                    img[:, :, c] = 0
            mask = np.load(Path(str(image_path).replace("_img_", "_mask_")))[:, :, [1, 2]]
            mask = np.dstack((mask, ~mask.any(axis=2))).astype(np.uint8)
            target = folder / split / image_path.name
            np.save(target, img.astype(np.float32))
            np.save(Path(str(target).replace("_img_", "_mask_")), mask)
            written.append(target)
        out[split] = tuple(written)
    return out


_README = """## HKH Glacier Segmentation Data (synthetic miniature)

A small synthetic copy of the layout of the LILA "HKH glacier mapping" release, written by
tests/data/hkh_release.py for tests. It holds no real imagery or outlines.

* raster_data: Landsat 7 tiles, 15 float32 bands each.
* vector_data: hkh.shp (glacier outlines, ``Glaciers`` = "Clean Ice" / "Debris covered"),
  split into clean.shp and debris.shp.
* masks: per-tile numpy masks.
* slices: numpy patches (img, mask) and slices.geojson.
* splits: filtered, imputed and normalized patches in train/, dev/ and test/.
"""
