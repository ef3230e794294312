#!/usr/bin/env bash
# Build .gpu/site.tar.xz: the packages a GPU machine without network lacks, as one tree to put
# on PYTHONPATH there (make gpu-check unpacks it). Runs HERE, with the package index; the GPU
# machine has Python 3.12 with torch, Lightning, timm, numpy, pandas, scipy, matplotlib, pytest…
# and lacks Hydra, segmentation-models-pytorch and the geo stack (listed below). Versions are
# the ones CI tests (requirements/constraints-py311.txt).
#   bash scripts/gpu_bundle.sh                 # cp312 manylinux x86_64 → .gpu/site.tar.xz
#   PYVER=3.11 OUT=/tmp/site311.tar.xz bash scripts/gpu_bundle.sh   # another Python (tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
OUT=${OUT:-.gpu/site.tar.xz}
PIP=${PIP:-.venv/bin/pip}
CONSTRAINTS=requirements/constraints-py311.txt
# what the GPU machine lacks (import names in brackets where they differ)
LACKING="hydra-core omegaconf antlr4-python3-runtime segmentation-models-pytorch rasterio geopandas
pyogrio shapely pyproj affine cligj click click-plugins attrs certifi pyyaml rio-cogeo morecantile
pydantic pydantic-core annotated-types typing-inspection pystac pystac-core geoutils"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
--platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64"
TARGET=(--python-version "$PYVER" --implementation cp $PLATFORMS)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pins=()
for name in $LACKING; do
    pin=$(grep -i "^${name}==" "$CONSTRAINTS") || { echo "no pin for $name in $CONSTRAINTS" >&2; exit 1; }
    pins+=("$pin")
done
# every pystac extension package pystac >= 1.14 is split into
pins+=($(grep -i '^pystac-ext-' "$CONSTRAINTS"))
# antlr4-python3-runtime 4.9.3 (omegaconf's parser) is published as an sdist only
antlr=$(printf '%s\n' "${pins[@]}" | grep -i '^antlr4-python3-runtime==')
"$PIP" wheel -q --no-deps -w "$work/wheels" "$antlr"
wheels=$(printf '%s\n' "${pins[@]}" | grep -vi '^antlr4-python3-runtime==')
"$PIP" download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$work/wheels" $wheels
"$PIP" install -q --no-deps --no-compile --only-binary=:all: "${TARGET[@]}" \
    --target "$work/site" "$work"/wheels/*.whl
find "$work/site" -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
find "$work/site" -name '__pycache__' -prune -exec rm -rf {} +
mkdir -p "$(dirname "$OUT")"
tar -C "$work/site" -cf - . | xz -T0 -6 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT: $(du -h "$OUT" | cut -f1), $(ls "$work/wheels" | wc -l) wheels for cp${PYVER/./}"
