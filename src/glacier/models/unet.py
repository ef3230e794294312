"""Our dropout U-Net: configurable depth, width, dropout kind and placement, batch norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glacier.errors import GlacierInputError
from glacier.models.padding import padded_forward

DROPOUT_TYPES = ("channel", "element")
DROPOUT_POSITIONS = ("first_conv", "block_end", "bottleneck", "none")
UPSAMPLINGS = ("transpose", "bilinear")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise GlacierInputError(f"model.{name}={value!r} is not one of {list(allowed)}")


def make_dropout(rate: float, kind: str) -> nn.Module:
    """A dropout layer: ``Dropout2d`` (whole channels) or ``Dropout`` (single activations)."""
    return nn.Dropout2d(rate) if kind == "channel" else nn.Dropout(rate)


class ConvBlock(nn.Sequential):
    """Two 3×3 convolutions with ReLU (and optional batch norm and dropout).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        batch_norm: Add BatchNorm after each convolution.
        dropout_after_first: Dropout layer placed after the first convolution, or None.
        dropout_at_end: Dropout layer placed after the block, or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        batch_norm: bool,
        dropout_after_first: nn.Module | None = None,
        dropout_at_end: nn.Module | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        for index, channels_in in enumerate((in_channels, out_channels)):
            layers.append(nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            if index == 0 and dropout_after_first is not None:
                layers.append(dropout_after_first)
        if dropout_at_end is not None:
            layers.append(dropout_at_end)
        super().__init__(*layers)


class Up(nn.Module):
    """Upsample ×2, concatenate the skip connection, convolve.

    Args:
        in_channels: Channels coming from below.
        out_channels: Channels after the block (= skip channels).
        mode: ``transpose`` or ``bilinear``.
        block: The convolution block applied after concatenation.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str, block: nn.Module) -> None:
        super().__init__()
        self.up: nn.Module
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        self.block = block

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Upsample ``x`` and merge it with ``skip``."""
        out: Tensor = self.block(torch.cat([self.up(x), skip], dim=1))
        return out


class DropoutUNet(nn.Module):
    """U-Net with configurable dropout.

    The predecessor's default is depth 5, 16 filters, dropout after the first convolution of
    each block. Inputs of any size are padded to a multiple of ``2**(depth-1)`` and the logits
    cropped back.

    Args:
        in_channels: Input channels.
        num_classes: Output classes (background included).
        depth: Resolution levels (1 = no downsampling).
        base_filters: Filters of the first level; doubled at each level.
        dropout: Dropout rate (0 = no dropout layers).
        dropout_type: ``channel`` (Dropout2d) or ``element`` (Dropout).
        dropout_position: ``first_conv``, ``block_end``, ``bottleneck`` or ``none``.
        batch_norm: BatchNorm after every convolution.
        upsampling: ``transpose`` or ``bilinear``.

    Raises:
        GlacierInputError: For invalid arguments.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 5,
        base_filters: int = 16,
        dropout: float = 0.2,
        dropout_type: str = "channel",
        dropout_position: str = "first_conv",
        batch_norm: bool = False,
        upsampling: str = "transpose",
    ) -> None:
        super().__init__()
        _check("dropout_type", dropout_type, DROPOUT_TYPES)
        _check("dropout_position", dropout_position, DROPOUT_POSITIONS)
        _check("upsampling", upsampling, UPSAMPLINGS)
        if depth < 1 or base_filters < 1:
            raise GlacierInputError(f"model.depth ({depth}) and base_filters must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise GlacierInputError(f"dropout must be in [0, 1), got {dropout}")
        self.depth = depth
        self.multiple = 2 ** (depth - 1)
        widths = [base_filters * 2**level for level in range(depth)]

        def block(channels_in: int, channels_out: int, bottom: bool = False) -> ConvBlock:
            active = dropout > 0 and (
                dropout_position in ("first_conv", "block_end")
                or (dropout_position == "bottleneck" and bottom)
            )
            layer = make_dropout(dropout, dropout_type) if active else None
            first = layer if dropout_position in ("first_conv", "bottleneck") else None
            end = layer if dropout_position == "block_end" else None
            return ConvBlock(channels_in, channels_out, batch_norm, first, end)

        self.down = nn.ModuleList()
        channels = in_channels
        for level, width in enumerate(widths):
            self.down.append(block(channels, width, bottom=level == depth - 1))
            channels = width
        self.up = nn.ModuleList(
            Up(
                widths[level + 1],
                widths[level],
                upsampling,
                block(2 * widths[level], widths[level]),
            )
            for level in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, K, H, W) for an input (B, C, H, W) of any size."""
        return padded_forward(self._forward, x, self.multiple)

    def _forward(self, x: Tensor) -> Tensor:
        """Logits for an input whose size is a multiple of ``self.multiple``."""
        skips = []
        for level, down in enumerate(self.down):
            x = down(x)
            if level < self.depth - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            x = up(x, skip)
        logits: Tensor = self.head(x)
        return logits
