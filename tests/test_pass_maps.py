"""Each MC pass's probabilities kept through the predictor: per-pass class maps."""

from __future__ import annotations

import torch
from torch import nn

from glacier.inference.engine.encode import pass_classes
from glacier.models import StatsNeeds, mc_dropout_stats


def test_per_pass_probabilities_are_each_draw_and_average_to_the_mean() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Dropout2d(0.5), nn.Conv2d(8, 2, 1)).eval()
    image = torch.randn(2, 3, 8, 8)
    stats = mc_dropout_stats(model, image, 4, [1, 2], needs=StatsNeeds(per_pass=4))
    assert stats.per_pass is not None and stats.per_pass.shape == (2, 8, 8, 8)
    draws = stats.per_pass.reshape(2, 4, 2, 8, 8)
    assert torch.allclose(draws.mean(dim=1), stats.probs, atol=1e-6)
    assert not torch.equal(draws[:, 0], draws[:, 1])  # the draws differ
    plain = mc_dropout_stats(model, image, 4, [1, 2])
    assert torch.equal(plain.probs, stats.probs)  # keeping the passes changes nothing else


def test_pass_class_maps_come_from_each_pass_and_mark_nodata() -> None:
    sums = torch.tensor(
        [
            [[0.9, 0.2]],  # pass 1, background
            [[0.1, 0.8]],  # pass 1, glacier
            [[0.3, 0.6]],  # pass 2, background
            [[0.7, 0.4]],  # pass 2, glacier
        ]
    )
    invalid = torch.tensor([[False, True]])
    maps = pass_classes(sums, 2, invalid)
    assert maps.dtype == torch.uint8 and maps.tolist() == [[[0, 255]], [[1, 255]]]
