"""Test-time augmentation: class probabilities averaged over flips/90° rotations (and MC dropout).

The model sees each of the chosen dihedral transforms of a raw batch; every output is mapped
back to the input's frame and the softmax probabilities are averaged. With ``mc_samples`` > 0
each transform is also passed through the network ``mc_samples`` times with only the dropout
layers sampling (:mod:`glacier.models.mc_dropout`), seeded, so the result repeats exactly.
:func:`tta_stats` also averages what the uncertainty measures need
(:mod:`glacier.models.uncertainty`).
Everything runs on the batch's device; the model's own modes are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from glacier.errors import GlacierInputError
from glacier.models.mc_dropout import mc_dropout_sampling
from glacier.models.pass_statistics import PassStats, StatsNeeds, pass_stats

DIHEDRAL = tuple(range(8))  # code = quarter turns + 4 x horizontal flip (as in data.augment)


def apply_view(image: Tensor, code: int) -> Tensor:
    """Apply dihedral transform ``code`` to the last two dimensions: rotate, then flip.

    Args:
        image: (..., H, W) tensor.
        code: Quarter turns (``code % 4``) plus 4 for a horizontal flip after the turns.

    Returns:
        The transformed tensor ((..., W, H) for odd turns).
    """
    out = torch.rot90(image, code % 4, dims=(-2, -1))
    return out.flip(-1) if code >= 4 else out


def undo_view(image: Tensor, code: int) -> Tensor:
    """Undo :func:`apply_view` with the same ``code``."""
    out = image.flip(-1) if code >= 4 else image
    return torch.rot90(out, -(code % 4), dims=(-2, -1))


def check_codes(codes: Sequence[int]) -> list[int]:
    """Validate transform codes (unique integers in [0, 8)).

    Raises:
        GlacierInputError: For an empty list or a code outside [0, 8).
    """
    chosen = [int(c) for c in codes]
    if not chosen or any(c not in DIHEDRAL for c in chosen) or len(set(chosen)) != len(chosen):
        raise GlacierInputError(f"tta transforms must be unique codes in 0..7, got {list(codes)}")
    return chosen


def tta_codes(transforms: int | Sequence[int]) -> list[int]:
    """The transforms to average: the first ``n`` of the eight, or explicit codes.

    ``1`` is the identity only, ``2`` adds a flip... the order is identity, three turns, then
    the four flipped versions, so ``4`` is every rotation.
    """
    if isinstance(transforms, int):
        if not 1 <= transforms <= len(DIHEDRAL):
            raise GlacierInputError(f"tta transforms={transforms}: use 1..8")
        return list(DIHEDRAL[:transforms])
    return check_codes(transforms)


@contextmanager
def evaluation(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block every module is in eval mode; each module's mode is restored after."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield model
    finally:
        for m, training in modes.items():
            m.training = training


def _view_sums(
    model: nn.Module,
    image: Tensor,
    code: int,
    mc_samples: int,
    temperature: float,
    needs: StatsNeeds,
) -> PassStats:
    """Summed statistics over the passes of one transform, in the input's frame."""
    view = apply_view(image, code)
    total = pass_stats(model(view), temperature, needs)
    for _ in range(mc_samples - 1):
        total.add_(pass_stats(model(view), temperature, needs))
    return total.map(lambda t: undo_view(t, code))


def tta_stats(
    model: nn.Module,
    image: Tensor,
    transforms: int | Sequence[int] = 8,
    mc_samples: int = 0,
    seed: int | None = None,
    temperature: float = 1.0,
    needs: StatsNeeds | None = None,
) -> PassStats:
    """Means of the pass statistics of a raw batch over dihedral transforms (and MC passes).

    Square inputs are safest; non-square ones work with any network that accepts both
    orientations (a U-Net whose downsampling divides H and W).

    Args:
        model: Maps a raw (B, C, H, W) batch to logits (B, K, H, W) (e.g.
            :class:`~glacier.models.segmenter.GlacierSegmenter`, which normalizes itself).
        image: The raw batch, on the model's device (NaN = nodata).
        transforms: How many of the eight transforms to average (see :func:`tta_codes`), or
            explicit codes.
        mc_samples: MC-dropout passes per transform (0 = deterministic passes, dropout off).
        seed: Seed of the MC-dropout draws (the global RNG state is left untouched).
        temperature: Divides the logits of every pass before the softmax.
        needs: Statistics besides the probabilities (see :class:`StatsNeeds`).

    Returns:
        (B, K, H, W) means over every pass, contiguous, on the image's device.
    """
    codes = tta_codes(transforms)
    needs = needs or StatsNeeds()
    passes = len(codes) * max(mc_samples, 1)
    devices = [image.device] if image.device.type == "cuda" else []
    modes = mc_dropout_sampling(model) if mc_samples > 0 else evaluation(model)
    with torch.random.fork_rng(devices=devices), torch.inference_mode(), modes:
        if seed is not None:
            torch.manual_seed(seed)
        total = _view_sums(model, image, codes[0], mc_samples, temperature, needs)
        total = total.map(lambda t: t.contiguous())
        for code in codes[1:]:
            total.add_(_view_sums(model, image, code, mc_samples, temperature, needs))
    return total.map(lambda t: t / passes)


def tta_probabilities(
    model: nn.Module,
    image: Tensor,
    transforms: int | Sequence[int] = 8,
    mc_samples: int = 0,
    seed: int | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Class probabilities of a raw batch averaged over dihedral transforms (and MC passes).

    The probabilities of :func:`tta_stats` (same arguments).

    Returns:
        (B, K, H, W) float probabilities, contiguous, on the image's device.
    """
    return tta_stats(model, image, transforms, mc_samples, seed, temperature).probs
