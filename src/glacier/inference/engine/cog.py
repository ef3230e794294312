"""Cloud-Optimized GeoTIFFs: turn a finished tiled GeoTIFF into a COG with internal overviews.

GDAL's COG driver (GDAL >= 3.1; rasterio's wheels bundle 3.10) builds the overviews in a
temporary file beside the destination, then writes overviews and full-resolution tiles in the
COG layout, block by block: memory stays bounded by GDAL's block cache (64 MB, set by
``glacier``) plus ~100 MB of buffers, whatever the scene size. It is 1.5-2x faster than
``rio_cogeo.cog_translate`` on the same 8000² maps (``python -m benchmarks.cog``).
"""

from __future__ import annotations

from pathlib import Path

import rasterio
import rasterio.shutil

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
RESAMPLING_CATEGORICAL = "mode"
RESAMPLING_CONTINUOUS = "average"


def cog_sidecars(path: Path) -> list[Path]:
    """Temporary files GDAL's COG driver creates beside ``path`` while it builds overviews."""
    return [path.with_name(path.name + suffix) for suffix in (".ovr.tmp", ".msk.ovr.tmp")]


def to_cog(
    src: Path,
    dst: Path,
    resampling: str,
    *,
    block: int = 256,
    zstd_level: int = 1,
    threads: int | str = "ALL_CPUS",
) -> Path:
    """Copy the GeoTIFF ``src`` to a COG ``dst`` with internal overviews.

    Pixels, CRS, transform, nodata, band descriptions, units and metadata are copied unchanged;
    the COG is ZSTD-compressed with the horizontal (integer) or floating-point predictor, tiled
    ``block`` × ``block``, with overviews halving the size until they fit in one block.

    Args:
        src: A finished GeoTIFF (any layout).
        dst: The COG to write (overwritten).
        resampling: Overview resampling: ``mode`` or ``nearest`` for class maps (values stay
            classes), ``average`` for probabilities and uncertainty (nodata is left out).
        block: Tile edge of the full resolution and of the overviews.
        zstd_level: ZSTD compression level (1: fast, about the size of deflate).
        threads: Compression threads (``ALL_CPUS`` or a number).

    Returns:
        ``dst``.
    """
    try:
        rasterio.shutil.copy(
            src,
            dst,
            driver="COG",
            COMPRESS="ZSTD",
            LEVEL=zstd_level,
            PREDICTOR="YES",  # 2 for integers, 3 for floats: as the streamed files
            BLOCKSIZE=block,
            OVERVIEWS="AUTO",  # down to the first level that fits in one block
            OVERVIEW_RESAMPLING=resampling.upper(),
            BIGTIFF="IF_SAFER",
            NUM_THREADS=threads,
        )
    finally:
        for sidecar in cog_sidecars(dst):
            sidecar.unlink(missing_ok=True)
    return dst
