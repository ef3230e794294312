"""Training augmentation as batched tensor ops on the batch's device (never at val/test).

Image and target always get the same geometric transform. Draws come from a seeded
``torch.Generator`` on the batch's device, so a seeded run augments identically every time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from glacier.data.contract import IGNORE_INDEX
from glacier.errors import GlacierInputError


def dihedral(image: Tensor, target: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
    """Apply one of the 8 flips/90° rotations per sample: code = rotations + 4 × flip.

    Args:
        image: (B, C, H, W) with H == W.
        target: (B, H, W).
        codes: (B,) integers in [0, 8).

    Returns:
        The transformed image and target (new tensors).
    """
    image, target = image.clone(), target.clone()
    for code in torch.unique(codes).tolist():
        chosen = (codes == code).nonzero().flatten()
        turns, flip = code % 4, code >= 4
        part_image = torch.rot90(image[chosen], turns, dims=(2, 3))
        part_target = torch.rot90(target[chosen], turns, dims=(1, 2))
        if flip:
            part_image, part_target = part_image.flip(3), part_target.flip(2)
        image[chosen], target[chosen] = part_image, part_target
    return image, target


def jitter(
    image: Tensor,
    mean: Tensor,
    std: Tensor,
    brightness: float,
    contrast: float,
    generator: torch.Generator,
) -> Tensor:
    """Per-sample, per-channel brightness and contrast jitter, in units of the channel's std.

    ``x' = mean + (x - mean) * c + b * std`` with ``c ~ U(1 - contrast, 1 + contrast)`` and
    ``b ~ U(-brightness, brightness)``: the same as jittering normalized values, applied to raw
    ones (NaN stays NaN).
    """
    batch, channels = image.shape[:2]
    shape = (batch, channels, 1, 1)
    device = image.device
    scale = 1 + contrast * (2 * torch.rand(shape, generator=generator, device=device) - 1)
    shift = brightness * (2 * torch.rand(shape, generator=generator, device=device) - 1)
    center = mean.view(1, -1, 1, 1)
    return (image - center) * scale + center + shift * std.view(1, -1, 1, 1)


def random_resized_crop(
    image: Tensor, target: Tensor, min_scale: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Zoom into a random square of ``s × size`` (``s ~ U(min_scale, 1)``) per sample.

    Bilinear for the image (nodata spreads as NaN), nearest for the target.
    """
    batch = image.shape[0]
    device = image.device
    scale = min_scale + (1 - min_scale) * torch.rand(batch, generator=generator, device=device)
    room = 1 - scale
    shift = room[:, None] * (2 * torch.rand((batch, 2), generator=generator, device=device) - 1)
    theta = torch.zeros((batch, 2, 3), device=device)
    theta[:, 0, 0], theta[:, 1, 1] = scale, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    zoomed = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    labels = F.grid_sample(
        target[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False
    )
    return zoomed.contiguous(memory_format=torch.channels_last), labels[:, 0].round().long()


class Augment:
    """Random flips and 90° rotations, optional brightness/contrast jitter and zoom crops.

    Args:
        flips: Random horizontal flips (with rotations: all 8 dihedral transforms).
        rotations: Random multiples of 90°.
        brightness: Maximum brightness shift, in channel standard deviations (0 = off).
        contrast: Maximum relative contrast change (0 = off).
        min_crop_scale: Zoom into a random square at least this fraction of the window
            (1.0 = off).
        seed: Seed of the augmentation draws.
    """

    def __init__(
        self,
        flips: bool = True,
        rotations: bool = True,
        brightness: float = 0.0,
        contrast: float = 0.0,
        min_crop_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        if brightness < 0 or not 0 <= contrast < 1 or not 0 < min_crop_scale <= 1:
            raise GlacierInputError(
                "augment: need brightness >= 0, 0 <= contrast < 1 and 0 < min_crop_scale <= 1, "
                f"got {brightness}, {contrast}, {min_crop_scale}"
            )
        self.flips = flips
        self.rotations = rotations
        self.brightness = brightness
        self.contrast = contrast
        self.min_crop_scale = min_crop_scale
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        """The seeded generator of a device (created on first use)."""
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def state_dict(self) -> dict[str, Tensor]:
        """The generators' states by device: a checkpoint keeps them, so a resumed run draws on."""
        return {str(device): gen.get_state() for device, gen in self._generators.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Continue from :meth:`state_dict` (devices this machine lacks are left to the seed)."""
        for name, value in state.items():
            device = torch.device(name)
            if device.type == "cuda" and not torch.cuda.is_available():
                continue
            self.generator(device).set_state(value)

    def __call__(
        self, image: Tensor, target: Tensor, mean: Tensor, std: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Augment a batch.

        Args:
            image: (B, C, H, W) raw float image (NaN = nodata).
            target: (B, H, W) targets (255 = nodata).
            mean: (C,) channel means (for jitter).
            std: (C,) channel standard deviations.

        Returns:
            The augmented image (channels-last memory) and target.
        """
        generator = self.generator(image.device)
        if self.flips or self.rotations:
            high = (4 if self.rotations else 1) * (2 if self.flips else 1)
            codes = torch.randint(high, (image.shape[0],), generator=generator, device=image.device)
            if not self.rotations:
                codes = codes * 4  # flip or not, no turn
            image, target = dihedral(image, target, codes)
        if self.min_crop_scale < 1:
            image, target = random_resized_crop(image, target, self.min_crop_scale, generator)
            target[target > IGNORE_INDEX] = IGNORE_INDEX
        if self.brightness or self.contrast:
            image = jitter(image, mean, std, self.brightness, self.contrast, generator)
        return image.contiguous(memory_format=torch.channels_last), target
