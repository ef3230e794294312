"""Scene ids and output names: one rule, collisions refused before anything is written."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from raster_inputs import listing, spec_for, write_polygons, write_raster

from glacier.errors import GlacierNameError
from glacier.inference.inputs import expand_inputs, scenes_from_inputs
from glacier.utils.names import (
    MAX_ID_LENGTH,
    id_problem,
    sanitize_name,
    unique_output_names,
    validate_scene_id,
)


@pytest.mark.parametrize(
    "name", ["LE71400412000304SGS00", "LE07_140041_20001030", "khumbu-2000.v2", "a", "A1"]
)
def test_valid_ids_pass_and_sanitize_to_themselves(name: str) -> None:
    assert id_problem(name) is None
    assert validate_scene_id(name, "data.scenes[0].id") == name
    assert sanitize_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is empty"),
        ("y2000/khumbu", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        ("a..b", "contains '..'"),
        (".hidden", "must start and end with a letter or digit"),
        ("khumbu_", "must start and end with a letter or digit"),
        ("Ngozumpa é", "must start and end with a letter or digit"),
        ("x" * (MAX_ID_LENGTH + 1), "characters long"),
        ("scene_img_2", "contains '_img_'"),
    ],
)
def test_invalid_ids_are_refused_naming_the_key_and_a_fix(name: str, reason: str) -> None:
    assert reason in str(id_problem(name))
    with pytest.raises(GlacierNameError) as error:
        validate_scene_id(name, "data.scenes[3].id")
    message = str(error.value)
    assert message.startswith(f"data.scenes[3].id={name!r}: a scene id ")
    assert reason in message
    assert f"use e.g. data.scenes[3].id={sanitize_name(name)}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y2000/khumbu", "y2000_khumbu"),
        ("../../etc/passwd", "etc_passwd"),
        ("Ngozumpa glacier é", "Ngozumpa_glacier_e"),
        ("a..b", "a.b"),
        ("scene_img_2", "scene_img-2"),
        ("  LE07 140041 (copy) ", "LE07_140041_copy"),
    ],
)
def test_sanitize_is_readable_and_deterministic(text: str, expected: str) -> None:
    assert sanitize_name(text) == expected


def test_non_latin_names_get_distinct_hashed_ids() -> None:
    khumbu, rongbuk = sanitize_name("खुम्बु"), sanitize_name("རོང་ཕུ")
    assert khumbu.startswith("scene-") and rongbuk.startswith("scene-")
    assert khumbu != rongbuk
    assert sanitize_name("खुम्बु") == khumbu  # stable across calls and runs


def test_sanitized_names_are_always_valid() -> None:
    rng = random.Random(0)
    alphabet = string.printable + "éखཀ../\\_img_label_"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 150)))
        name = sanitize_name(text)
        assert id_problem(name) is None, (text, name)
        assert sanitize_name(name) == name


def test_long_names_are_cut_with_a_hash() -> None:
    first, second = sanitize_name("a" * 150 + "1"), sanitize_name("a" * 150 + "2")
    assert len(first) == MAX_ID_LENGTH and first != second


def test_explicit_ids_with_separators_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    scene = write_raster(tmp_path / "scene.tif", count=1)
    labels = write_polygons(tmp_path / "labels.gpkg")
    before = listing(tmp_path)
    with pytest.raises(GlacierNameError, match=r"data\.scenes\[0\]\.id='y2000/khumbu'"):
        spec_for(
            [("y2000/khumbu", [(scene, ["nir"])]), ("y2010/khumbu", [(scene, ["nir"])])],
            labels,
        )
    assert listing(tmp_path) == before


def test_ids_equal_ignoring_case_are_refused(tmp_path: Path) -> None:
    scene = write_raster(tmp_path / "scene.tif")
    labels = write_polygons(tmp_path / "labels.gpkg")
    with pytest.raises(GlacierNameError) as error:
        spec_for([("Khumbu", [(scene, ["nir"])]), ("khumbu", [(scene, ["nir"])])], labels)
    assert str(error.value) == (
        "scene ids must be distinct (ignoring case): they name the mask and slice files: "
        "'Khumbu' from data.scenes[0].id, data.scenes[1].id; give each scene its own id in "
        "data.scenes, or rename the files matched by data.scene_glob"
    )


def test_scene_glob_stems_are_sanitized_and_collisions_refused(tmp_path: Path) -> None:
    from glacier.data.spec import DataSpec

    labels = write_polygons(tmp_path / "labels.gpkg")
    for folder in ("2000", "2010"):
        (tmp_path / folder).mkdir()
        write_raster(tmp_path / folder / "khumbu glacier.tif")
    common = {"name": "t", "classes": ["glacier"], "bands": ["nir"]}
    common["labels"] = [{"path": str(labels), "class_name": "glacier"}]
    one = DataSpec(scene_glob=str(tmp_path / "2000" / "*.tif"), **common)  # type: ignore[arg-type]
    assert [s.id for s in one.scenes] == ["khumbu_glacier"]
    with pytest.raises(GlacierNameError) as error:
        DataSpec(scene_glob=str(tmp_path / "*" / "*.tif"), **common)  # type: ignore[arg-type]
    message = str(error.value)
    assert "'khumbu_glacier' from " in message
    assert str(tmp_path / "2000" / "khumbu glacier.tif") in message
    assert str(tmp_path / "2010" / "khumbu glacier.tif") in message


def test_unique_output_names_refuses_colliding_inputs_listing_them() -> None:
    assert unique_output_names([Path("a/north.tif"), Path("b/south.tif")]) == ["north", "south"]
    with pytest.raises(GlacierNameError) as error:
        unique_output_names([Path("a/scene.tif"), Path("b/Scene.TIF"), Path("c/other.tif")])
    assert str(error.value) == (
        "input= files would overwrite each other's outputs (names equal ignoring case): "
        "'scene' from a/scene.tif, b/Scene.TIF; rename the files or map them in separate runs "
        "with different out_dir="
    )


def test_predict_inputs_use_the_same_ids_and_refuse_collisions(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_raster(tmp_path / folder / "scene 1.tif", count=4)
    layout = [["red", "green", "blue", "nir"]]
    one = scenes_from_inputs([tmp_path / "a" / "scene 1.tif"], layout)
    assert [s.id for s in one] == ["scene_1"]
    before = listing(tmp_path)
    with pytest.raises(
        GlacierNameError, match=r"'scene_1' from .*a/scene 1\.tif, .*b/scene 1\.tif"
    ):
        scenes_from_inputs(expand_inputs(str(tmp_path / "*" / "*.tif")), layout)
    assert listing(tmp_path) == before


def test_a_file_matched_by_two_patterns_is_mapped_once(tmp_path: Path) -> None:
    a = write_raster(tmp_path / "a.tif")
    b = write_raster(tmp_path / "b.tif")
    assert expand_inputs([str(a), str(tmp_path / "*.tif")]) == [a, b]
