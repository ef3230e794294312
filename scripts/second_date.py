"""A generated second date of the embedded Everest sample: its largest glaciers retreated.

``python scripts/second_date.py OUT_DIR [--glaciers 10] [--pixels 3]`` writes
``LE71400412010308SGS00_RGB.TIF`` and ``LE71400412010308SGS00_B4_crop.TIF`` (the scene's two
band files as if acquired on 2010-11-04) in which the chosen glaciers lost every pixel within
``--pixels`` pixel widths of their outline's edge, and ``lost.csv`` (the known loss per glacier,
km²; its sum on stderr), then prints the two file paths and the inventory's path (what
``make demo-change`` maps and compares: README, "Glacier change").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import geopandas as gpd

from glacier.data.spec import apply_retreat, largest_inside, sample_path

SCENE = "LE71400412000304SGS00"
LATER = "LE71400412010308SGS00"  # 2010, day 308: 2010-11-04
FILES = ("_RGB.TIF", "_B4_crop.TIF")
ID_COLUMN = "RGIId"


def main() -> None:
    """Write the second date and print its files and the inventory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--glaciers", type=int, default=10, help="how many glaciers retreat")
    parser.add_argument("--pixels", type=float, default=3, help="retreat depth in pixels")
    args = parser.parse_args()
    inventory = sample_path("glacier_outlines.gpkg")
    outlines = gpd.read_file(inventory)
    sources = [Path(sample_path(SCENE + suffix)) for suffix in FILES]
    chosen = largest_inside(outlines, sources[0], args.glaciers, ID_COLUMN)
    stems = [LATER + Path(suffix).stem for suffix in FILES]
    retreat = apply_retreat(sources, outlines, chosen, ID_COLUMN, args.pixels, args.out_dir, stems)
    retreat.lost.to_csv(args.out_dir / "lost.csv", index=False)
    known = (
        f"known loss (lost.csv): {retreat.lost['km2'].sum():.2f} km² over {len(chosen)} glaciers"
    )
    print(known, file=sys.stderr)
    print(*retreat.files, inventory)


if __name__ == "__main__":
    main()
