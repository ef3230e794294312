"""Temperature scaling: the fit recovers a known temperature; the checkpoint carries it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glacier.data.contract import IGNORE_INDEX, Channel, ChannelStats, DatasetContract
from glacier.models import (
    GlacierSegmenter,
    collect_logits,
    fit_temperature,
    store_temperature,
    tta_stats,
)


def generated_logits(
    temperature: float, pixels: int = 200_000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(a), logits observed as a × temperature (so T recovers a)."""
    generator = torch.Generator().manual_seed(0)
    calibrated = torch.randn(pixels, 3, generator=generator) * 2.0
    labels = torch.multinomial(calibrated.softmax(dim=1), 1, generator=generator).squeeze(1)
    return calibrated * temperature, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_the_fit_recovers_a_known_temperature(temperature: float) -> None:
    logits, labels = generated_logits(temperature)
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(temperature, rel=0.03)
    assert fit.nll_after <= fit.nll_before + 1e-9
    assert fit.ece_after is not None and fit.ece_before is not None
    assert fit.ece_after < 0.01
    if temperature != 1.0:
        assert fit.ece_before > 3 * fit.ece_after
    assert fit.pixels == len(labels)


def test_a_model_no_better_than_chance_gets_a_bounded_temperature() -> None:
    logits, labels = generated_logits(1.0, 10_000)
    fit = fit_temperature(-logits, labels)  # confidently wrong: T would run to infinity
    assert fit.temperature == 100.0 and fit.nll_after < fit.nll_before


def test_no_pixels_leave_the_temperature_at_1() -> None:
    fit = fit_temperature(torch.zeros((0, 2)), torch.zeros(0, dtype=torch.long))
    assert fit.temperature == 1.0 and fit.pixels == 0


def segmenter(**kwargs: object) -> GlacierSegmenter:
    contract = DatasetContract(
        name="t",
        channels=tuple(Channel(c) for c in ("a", "b")),
        classes=("glacier",),
        stats=ChannelStats(mean={"a": 0.0, "b": 0.0}, std={"a": 1.0, "b": 1.0}),
    )
    torch.manual_seed(0)
    return GlacierSegmenter(
        model={"_target_": "glacier.models.unet.DropoutUNet", "depth": 2, "base_filters": 4},
        loss={"_target_": "glacier.models.losses.CrossEntropyLoss"},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        class_names=["glacier"],
        channel_names=["a", "b"],
        data=contract.to_dict(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_collect_logits_skips_nodata_and_keeps_every_nth_pixel() -> None:
    module = segmenter().eval()
    image = torch.randn(2, 2, 8, 8)
    mask = torch.ones(2, 8, 8, dtype=torch.long)
    mask[0, :4] = IGNORE_INDEX  # 32 nodata pixels
    logits, labels = collect_logits(module, [{"image": image, "mask": mask}])
    assert logits.shape == (96, 2) and bool((labels == 1).all())
    with torch.no_grad():
        expected = module(image).permute(0, 2, 3, 1)[mask != IGNORE_INDEX]
    torch.testing.assert_close(logits, expected)
    every_third, _ = collect_logits(module, [{"image": image, "mask": mask}], stride=3)
    torch.testing.assert_close(every_third, expected[::3])


def test_the_checkpoint_carries_the_temperature_and_old_ones_read_as_1(tmp_path: Path) -> None:
    module = segmenter()
    path = tmp_path / "best.ckpt"
    checkpoint = {
        "state_dict": {k: v for k, v in module.state_dict().items() if k != "temperature"},
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": "2.5.0",
    }
    torch.save(checkpoint, path)  # as a checkpoint from before calibration
    old = GlacierSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert old.temperature_value == 1.0
    store_temperature(path, 1.7)
    new = GlacierSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert new.temperature_value == pytest.approx(1.7)
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("tta", [False, True])
def test_the_test_step_divides_every_pass_by_the_temperature(tta: bool) -> None:
    module = segmenter(tta=tta).eval()
    image = torch.randn(2, 2, 16, 16)
    plain = module.test_logits(image, 0)
    module.temperature.fill_(2.0)
    logits, stats = module.test_outputs(image, 0)
    with torch.no_grad():
        if tta:
            expected = tta_stats(module, image, 8, 0, 0, 2.0).probs
            torch.testing.assert_close(logits.softmax(1), expected, atol=1e-5, rtol=1e-4)
        else:
            torch.testing.assert_close(logits, plain / 2.0)
    assert stats.uncalibrated is not None  # kept to score calibration before and after
    assert module.test_passes().views == (8 if tta else 1)
    assert module.test_passes().temperature == 2.0


def test_the_test_step_logs_the_quality_of_its_uncertainty() -> None:
    module = segmenter(tta=True).eval()
    logged: dict[str, float] = {}
    module.log_dict = lambda values, **_: logged.update(values)  # type: ignore[method-assign]
    module.log = lambda name, value, **_: logged.update({name: float(value)})  # type: ignore[method-assign]
    module.on_test_epoch_start()
    generator = torch.Generator().manual_seed(1)
    for index in range(2):
        image = torch.randn(2, 2, 16, 16, generator=generator)
        mask = torch.randint(0, 2, (2, 16, 16), generator=generator)
        mask[:, :2] = IGNORE_INDEX
        with torch.no_grad():
            module.test_step({"image": image, "mask": mask}, index)
    module.on_test_epoch_end()
    quality = module.test_uncertainty
    assert quality is not None and quality.pixels == 2 * 2 * 14 * 16
    assert set(quality.measures) == {"one_minus_max", "entropy", "mutual_information", "spread"}
    assert logged["test/uncertainty_views"] == 8 and logged["test/uncertainty_mc_samples"] == 0
    assert 0 <= logged["test/auroc_spread"] <= 1 and "test/ece" in logged
    assert "test/ece_uncalibrated" not in logged  # temperature 1: nothing to compare
