"""Networks, MC dropout and losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glacier.errors import GlacierInputError
from glacier.models import (
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    DropoutUNet,
    FocalLoss,
    SmpSegmentationModel,
    has_dropout,
    mc_dropout_moments,
    mc_dropout_sampling,
)


def count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_unet_keeps_any_input_size(depth: int) -> None:
    model = DropoutUNet(4, 3, depth=depth, base_filters=4).eval()
    assert model(torch.zeros(1, 4, 70, 45)).shape == (1, 3, 70, 45)


def test_smp_model_keeps_any_input_size_and_has_head_dropout() -> None:
    model = SmpSegmentationModel(4, 3, encoder_name="resnet18", dropout=0.3).eval()
    assert model(torch.zeros(1, 4, 70, 45)).shape == (1, 3, 70, 45)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout2d)] == [0.3]


@pytest.mark.parametrize(
    ("position", "expected"), [("first_conv", 7), ("block_end", 7), ("bottleneck", 1), ("none", 0)]
)
def test_dropout_placement(position: str, expected: int) -> None:
    model = DropoutUNet(3, 2, depth=4, base_filters=4, dropout=0.2, dropout_position=position)
    assert count(model, nn.Dropout2d) == expected  # 4 encoder + 3 decoder blocks
    assert has_dropout(model) == (expected > 0)


def test_element_dropout_and_zero_rate() -> None:
    element = DropoutUNet(3, 2, depth=3, base_filters=4, dropout=0.2, dropout_type="element")
    assert count(element, nn.Dropout) == 5 and count(element, nn.Dropout2d) == 0
    assert count(DropoutUNet(3, 2, depth=3, base_filters=4, dropout=0.0), nn.Dropout2d) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dropout_type": "pixel"},
        {"dropout_position": "top"},
        {"upsampling": "nearest"},
        {"dropout": 1.0},
        {"depth": 0},
    ],
)
def test_bad_model_arguments_are_named(kwargs: dict[str, object]) -> None:
    with pytest.raises(GlacierInputError, match=next(iter(kwargs))):
        DropoutUNet(3, 2, **kwargs)  # type: ignore[arg-type]


def test_unknown_smp_architecture_is_named() -> None:
    with pytest.raises(GlacierInputError, match="Unetz"):
        SmpSegmentationModel(3, 2, arch="Unetz")


def test_mc_dropout_samples_only_dropout_and_restores_modes() -> None:
    torch.manual_seed(0)
    model = DropoutUNet(3, 2, depth=3, base_filters=4, dropout=0.5, batch_norm=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval: deterministic
        with mc_dropout_sampling(model):
            assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
            assert all(m.training for m in model.modules() if isinstance(m, nn.Dropout2d))
            assert not torch.equal(model(x), model(x))
    assert not any(m.training for m in model.modules())
    model.train()
    with mc_dropout_sampling(model):
        pass
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("kind", ["channel", "element"])
def test_mc_moments_are_seeded_per_sample_whatever_the_batch(kind: str) -> None:
    model = DropoutUNet(3, 2, depth=2, base_filters=4, dropout=0.5, dropout_type=kind).eval()
    x = torch.randn(3, 3, 16, 16)
    mean, variance = mc_dropout_moments(model, x, 5, seeds=[3, 4, 5])
    again, _ = mc_dropout_moments(model, x, 5, seeds=[3, 4, 5])
    other, _ = mc_dropout_moments(model, x, 5, seeds=[6, 4, 5])
    assert torch.equal(mean, again) and not torch.equal(mean[0], other[0])
    assert torch.equal(mean[1:], other[1:])  # a sample's draws are its own
    alone, alone_variance = mc_dropout_moments(model, x[1:2], 5, seeds=[4])
    torch.testing.assert_close(alone[0], mean[1], rtol=1e-5, atol=1e-6)  # batch-independent
    torch.testing.assert_close(alone_variance[0], variance[1], rtol=1e-4, atol=1e-6)
    assert variance.mean() > 0 and torch.allclose(mean.sum(dim=1), torch.ones(3, 16, 16))
    assert not any(m.training for m in model.modules())  # modes restored
    assert not any(layer._forward_hooks for layer in model.modules())  # hooks removed


def one_hot_logits(target: torch.Tensor, classes: int, scale: float = 20.0) -> torch.Tensor:
    return F.one_hot(target.clamp(max=classes - 1), classes).permute(0, 3, 1, 2).float() * scale


def test_dice_is_zero_for_a_perfect_prediction_and_large_for_a_wrong_one() -> None:
    target = torch.randint(0, 3, (2, 8, 8))
    loss = DiceLoss(smooth=0.0)
    assert loss(one_hot_logits(target, 3), target) < 1e-6
    assert loss(one_hot_logits((target + 1) % 3, 3), target) > 0.9


def test_ignored_pixels_do_not_change_any_loss() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 8, 8)
    target = torch.randint(0, 3, (1, 8, 8))
    masked = target.clone()
    masked[:, :, 4:] = 255
    for loss in (DiceLoss(), CrossEntropyLoss(), FocalLoss(), DiceCELoss()):
        cropped = loss(logits[..., :4].contiguous(), target[..., :4].contiguous())
        assert torch.isclose(loss(logits, masked), cropped, atol=1e-6)


def test_all_ignored_batch_gives_zero_with_finite_gradients() -> None:
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    for loss in (DiceLoss(), CrossEntropyLoss(), FocalLoss(), DiceCELoss()):
        value = loss(logits, target)
        value.backward()
        assert value.item() == 0.0 and torch.isfinite(logits.grad).all()  # type: ignore[arg-type]


def test_class_weights_weigh_dice_terms_by_hand() -> None:
    logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # predicts [0, 1] with certainty
    target = torch.tensor([[[0, 0]]])  # truth [0, 0]
    # class 0: dice = 2*1/(1+2) = 2/3; class 1: dice = 0/(1+0) = 0 (no smoothing)
    loss = DiceLoss(class_weights=[1.0, 3.0], smooth=0.0)(logits, target)
    assert loss.item() == pytest.approx((1 * (1 - 2 / 3) + 3 * 1.0) / 4, abs=1e-3)
    with pytest.raises(GlacierInputError, match="class_weights"):
        DiceLoss(class_weights=[1.0])(logits, target)


def test_cross_entropy_matches_torch_and_focal_gamma_zero_is_cross_entropy() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 6, 6)
    target = torch.randint(0, 3, (2, 6, 6))
    target[0, 0] = 255
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.isclose(CrossEntropyLoss()(logits, target), expected)
    assert torch.isclose(FocalLoss(gamma=0.0)(logits, target), expected, atol=1e-6)
    assert FocalLoss(gamma=2.0)(logits, target) < expected
