"""Monte Carlo dropout: only dropout layers sample at inference, everything else stays eval."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from glacier.models.pass_statistics import PassStats, StatsNeeds, StatsSum, pass_stats
from glacier.models.uncertainty import CLASS_AXIS

DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def dropout_layers(module: nn.Module) -> list[nn.Module]:
    """Every dropout layer inside ``module``."""
    return [m for m in module.modules() if isinstance(m, DROPOUT_LAYERS)]


def has_dropout(module: nn.Module) -> bool:
    """Whether ``module`` holds a dropout layer with a non-zero rate."""
    return any(float(getattr(m, "p", 0.0)) > 0 for m in dropout_layers(module))


def enable_mc_dropout(module: nn.Module) -> list[nn.Module]:
    """Put ``module`` in eval mode except its dropout layers.

    Args:
        module: A network.

    Returns:
        The dropout layers switched to training mode.
    """
    module.eval()
    layers = dropout_layers(module)
    for layer in layers:
        layer.train()
    return layers


@contextmanager
def mc_dropout_sampling(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block only dropout layers are active; every module's mode is restored after.

    Args:
        module: A network.

    Yields:
        The same module.
    """
    modes = {m: m.training for m in module.modules()}
    try:
        enable_mc_dropout(module)
        yield module
    finally:
        for m, training in modes.items():
            m.training = training


MASK_SHAPE_2D = (nn.Dropout2d,)  # whole channels: one draw per (sample, channel)
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def draw_seed(sample_seed: int, layer: int, draw: int) -> int:
    """The seed of one dropout mask: a mix of the sample's seed, the layer and the pass."""
    mixed = sample_seed * _MIX[0] + (layer + 1) * _MIX[1] + (draw + 1) * _MIX[2]
    return mixed % (2**63 - 1)


class SeededMasks:
    """Forward hooks giving every dropout layer of an eval-mode model per-sample seeded masks.

    Each sample of a batch draws its masks from its own seed, so a sample's MC-dropout result
    does not depend on the batch it is in (its size, its other members, the device's order of
    draws): tiles give the same maps whatever the batch size, grouping or sharding.

    Args:
        model: A network in eval mode (batch norm uses its running statistics).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in dropout_layers(model) if float(getattr(m, "p", 0.0)) > 0]
        self.seeds: list[int] = []
        self.draw = 0
        self._generators: dict[torch.device, torch.Generator] = {}
        self._handles = [
            layer.register_forward_hook(self._hook(index))
            for index, layer in enumerate(self.layers)
        ]

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device)
        return self._generators[device]

    def _hook(self, index: int) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], Tensor]:
        def apply(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            x = inputs[0]
            rate = float(getattr(module, "p", 0.0))
            per_sample = (x.shape[1], 1, 1) if isinstance(module, MASK_SHAPE_2D) else x.shape[1:]
            generator = self._generator(x.device)
            masks = torch.empty((x.shape[0], *per_sample), device=x.device)
            for row, seed in enumerate(self.seeds):
                generator.manual_seed(draw_seed(seed, index, self.draw))
                torch.rand(per_sample, generator=generator, device=x.device, out=masks[row])
            keep = (masks >= rate).to(x.dtype)
            return x * keep * (1.0 / (1.0 - rate))

        return apply

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()


def mc_dropout_stats(
    model: nn.Module,
    image: Tensor,
    samples: int,
    seeds: Sequence[int],
    temperature: float = 1.0,
    needs: StatsNeeds | None = None,
) -> PassStats:
    """Means over ``samples`` MC-dropout passes of the softmax probabilities (and ``needs``).

    Only dropout layers sample (batch norm keeps its running statistics); sample ``i`` of the
    batch draws its masks from ``seeds[i]``. Accumulates sums instead of stacking the passes:
    memory stays at one set of sums and one pass.

    Args:
        model: Maps (B, C, H, W) to logits (B, K, H, W).
        image: The input batch.
        samples: Number of passes (>= 1).
        seeds: One seed per sample of the batch.
        temperature: Divides the logits of every pass before the softmax.
        needs: Statistics besides the probabilities (see :class:`StatsNeeds`).

    Returns:
        (B, K, H, W) float32 means (entropy (B, 1, H, W); with ``needs.per_pass`` also every
        pass's probabilities, (B, samples·K, H, W)).
    """
    if len(seeds) != image.shape[0]:
        raise ValueError(f"need one seed per sample: {len(seeds)} seeds, batch {image.shape[0]}")
    needs = needs or StatsNeeds()
    modes = {m: m.training for m in model.modules()}
    model.eval()
    masks = SeededMasks(model)
    masks.seeds = [int(seed) for seed in seeds]
    total = StatsSum()
    draws: list[Tensor] = []
    try:
        with torch.inference_mode():
            for draw in range(samples):
                masks.draw = draw
                stats = pass_stats(model(image), temperature, needs)
                if stats.per_pass is not None:  # kept pass by pass, not summed
                    draws.append(stats.per_pass.clone())
                    stats.per_pass = None
                total.add(stats)
            mean = total.mean()
            if draws:
                mean.per_pass = torch.cat(draws, dim=CLASS_AXIS)
            return mean
    finally:
        masks.remove()
        for module, training in modes.items():
            module.training = training


def mc_dropout_moments(
    model: nn.Module, image: Tensor, samples: int, seeds: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Mean and population variance over ``samples`` MC-dropout passes of the probabilities.

    See :func:`mc_dropout_stats` (the same passes).

    Returns:
        (B, K, H, W) float32 mean and variance.
    """
    stats = mc_dropout_stats(model, image, samples, seeds, needs=StatsNeeds(squares=True))
    assert stats.squares is not None
    mean = stats.probs
    return mean, (stats.squares - mean * mean).clamp_(min=0.0)
