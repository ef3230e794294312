"""Numeric config checks name the key, the bound and what to do."""

from __future__ import annotations

import math

import pytest

from glacier.errors import (
    GlacierConfigError,
    GlacierInputError,
    require_choice,
    require_non_negative,
    require_positive,
    require_range,
)


def test_valid_values_come_back_unchanged() -> None:
    assert require_positive("batch_size", 8) == 8
    assert require_positive("tile_size", 512.0) == 512.0
    assert require_non_negative("mc_samples", 0) == 0
    assert require_range("overlap", 0.5, 0, 1, high_inclusive=False) == 0.5
    assert require_choice("probabilities", "uint8", ("uint8", "float32")) == "uint8"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: require_positive("batch_size", 0),
            "batch_size=0: must be an integer > 0; set batch_size to such a value in the config "
            "or on the command line",
        ),
        (
            lambda: require_positive("n_jobs", -2),
            "n_jobs=-2: must be an integer > 0; set n_jobs to such a value in the config or on "
            "the command line",
        ),
        (
            lambda: require_non_negative("mc_samples", -1),
            "mc_samples=-1: must be an integer >= 0; set mc_samples to such a value in the config "
            "or on the command line",
        ),
        (
            lambda: require_range("dropout", 1.0, 0, 1, high_inclusive=False),
            "dropout=1.0: must be a number >= 0 and < 1; set dropout to such a value in the "
            "config or on the command line",
        ),
        (
            lambda: require_positive("tile_size", 256.5),
            "tile_size=256.5: must be a whole number, e.g. tile_size=256",
        ),
        (
            lambda: require_positive("batch_size", "8"),
            "batch_size='8': must be an integer, e.g. batch_size=1",
        ),
        (
            lambda: require_positive("batch_size", True),
            "batch_size=True: must be an integer, e.g. batch_size=1",
        ),
        (lambda: require_range("lr", math.nan, 0), "lr=nan: must be a finite number"),
        (
            lambda: require_choice("device", "tpu", ("cpu", "cuda", "auto")),
            "device='tpu': choose one of ['cpu', 'cuda', 'auto']",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(call: object, message: str) -> None:
    with pytest.raises(GlacierConfigError) as error:
        call()  # type: ignore[operator]
    assert str(error.value) == message
    assert isinstance(error.value, GlacierInputError)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("slice_size", 0, "data.slice_size=0: must be an integer >= 2"),
        ("slice_size", 64.5, "data.slice_size=64.5: must be a whole number"),
        ("overlap", -4, "data.overlap=-4: must be an integer >= 0"),
    ],
)
def test_data_spec_slicing_bounds(key: str, value: float, message: str) -> None:
    from glacier.data.spec import DataSpec

    settings = {"slice_size": 64, "overlap": 8, key: value}
    with pytest.raises(GlacierConfigError, match=message.replace(".", r"\.")):
        DataSpec(
            name="t",
            classes=["glacier"],
            labels=[],
            scenes=[{"id": "s", "sources": [{"path": "x.tif", "bands": ["a"]}]}],
            **settings,  # type: ignore[arg-type]
        )
