"""Test-time augmentation: exact inverses, averaging, seeded MC passes, modes restored."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from glacier.data.loading.augment import dihedral
from glacier.errors import GlacierInputError
from glacier.models import apply_view, tta_codes, tta_probabilities, undo_view
from glacier.models.tta import DIHEDRAL


class Shifted(nn.Module):
    """A network that is not rotation-equivariant: logits depend on the column index."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.drop = nn.Dropout2d(0.5)
        self.norm = nn.BatchNorm2d(2)

    def forward(self, image: Tensor) -> Tensor:
        ramp = torch.linspace(0, 1, image.shape[-1], device=image.device)
        return self.norm(self.drop(self.conv(image))) + ramp


@pytest.mark.parametrize("code", DIHEDRAL)
def test_invert_undoes_transform_and_matches_augment(code: int) -> None:
    image = torch.randn(2, 3, 8, 8)
    assert torch.equal(undo_view(apply_view(image, code), code), image)
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    expected, _ = dihedral(image, target, torch.full((2,), code))
    assert torch.equal(apply_view(image, code), expected)  # the training transforms, same codes


def test_non_square_inputs_come_back_in_their_frame() -> None:
    image = torch.randn(1, 3, 8, 16)
    for code in DIHEDRAL:
        assert torch.equal(undo_view(apply_view(image, code), code), image)


def test_tta_averages_the_inverse_mapped_probabilities() -> None:
    torch.manual_seed(0)
    model = Shifted().eval()
    image = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = torch.stack(
            [undo_view(model(apply_view(image, c)).softmax(1), c) for c in DIHEDRAL]
        ).mean(0)
    probs = tta_probabilities(model, image)
    assert probs.shape == (2, 2, 16, 16)
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(2, 16, 16), atol=1e-5)
    one = tta_probabilities(model, image, transforms=1)
    assert torch.allclose(one, model(image).softmax(1).detach(), atol=1e-6)


def test_an_equivariant_model_is_unchanged_by_tta() -> None:
    model = nn.Conv2d(3, 2, 1).eval()
    image = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        plain = model(image).softmax(1)
    assert torch.allclose(tta_probabilities(model, image), plain, atol=1e-6)


def test_mc_passes_are_seeded_and_modes_restored() -> None:
    model = Shifted().train()
    image = torch.randn(2, 3, 16, 16)
    state = torch.random.get_rng_state()
    first = tta_probabilities(model, image, transforms=2, mc_samples=3, seed=7)
    again = tta_probabilities(model, image, transforms=2, mc_samples=3, seed=7)
    other = tta_probabilities(model, image, transforms=2, mc_samples=3, seed=8)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert all(m.training for m in model.modules())  # modes restored
    model.eval()
    tta_probabilities(model, image, mc_samples=2, seed=1)
    assert not any(m.training for m in model.modules())


def test_deterministic_passes_use_eval_mode_even_for_a_training_model() -> None:
    model = Shifted().train()
    image = torch.randn(2, 3, 16, 16)
    probs = tta_probabilities(model, image, transforms=1)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(probs, model(image).softmax(1), atol=1e-6)


@pytest.mark.parametrize("bad", [0, 9, [0, 0], [8], []])
def test_bad_transform_choices_are_refused(bad: int | list[int]) -> None:
    with pytest.raises(GlacierInputError):
        tta_codes(bad)


def test_segmenter_test_step_uses_tta_when_enabled() -> None:
    from glacier.data.contract import Channel, ChannelStats, DatasetContract
    from glacier.models import GlacierSegmenter

    contract = DatasetContract(
        name="t",
        channels=tuple(Channel(c) for c in ("a", "b")),
        classes=("glacier",),
        stats=ChannelStats(mean={"a": 0.0, "b": 0.0}, std={"a": 1.0, "b": 1.0}),
    )
    kwargs = {
        "model": {"_target_": "glacier.models.unet.DropoutUNet", "depth": 2, "base_filters": 4},
        "loss": {"_target_": "glacier.models.losses.CrossEntropyLoss"},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
        "class_names": ["glacier"],
        "channel_names": ["a", "b"],
        "data": contract.to_dict(),
    }
    torch.manual_seed(0)
    plain = GlacierSegmenter(**kwargs).eval()
    tta = GlacierSegmenter(**kwargs, tta=True).eval()
    tta.load_state_dict(plain.state_dict())
    image = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.allclose(plain.test_logits(image, 0), plain(image))
        expected = tta_probabilities(plain, image)
        assert torch.allclose(tta.test_logits(image, 0).softmax(1), expected, atol=1e-5)
