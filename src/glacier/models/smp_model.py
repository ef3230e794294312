"""Any segmentation-models-pytorch architecture, with dropout before its segmentation head."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from glacier.errors import GlacierInputError
from glacier.models.padding import padded_forward

UNET_DECODER = (256, 128, 64, 32, 16)


class SmpSegmentationModel(nn.Module):
    """An smp model (``arch`` + ``encoder_name``) with ``Dropout2d`` before the head.

    No weights are downloaded unless ``encoder_weights`` names a pretrained set. Inputs of any
    size are padded to a multiple of ``2**encoder_depth`` and the logits cropped back.

    Args:
        in_channels: Input channels.
        num_classes: Output classes (background included).
        arch: smp architecture (``Unet``, ``UnetPlusPlus``, ``FPN``, ``DeepLabV3Plus``, ...).
        encoder_name: smp encoder (``resnet18``, ``efficientnet-b0``, ...).
        encoder_weights: Pretrained weights name or None.
        encoder_depth: Encoder stages (3-5).
        dropout: Rate of the Dropout2d before the segmentation head.

    Raises:
        GlacierInputError: For an unknown architecture or encoder.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        arch: str = "Unet",
        encoder_name: str = "resnet18",
        encoder_weights: str | None = None,
        encoder_depth: int = 5,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        arches = sorted(smp.MODEL_ARCHITECTURES_MAPPING)
        if arch.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
            raise GlacierInputError(f"unknown model.arch '{arch}'; smp offers {arches}")
        encoders = smp.encoders.get_encoder_names()
        if encoder_name not in encoders:
            raise GlacierInputError(
                f"unknown model.encoder_name '{encoder_name}'; e.g. {encoders[:8]} "
                f"({len(encoders)} in smp)"
            )
        extra: dict[str, object] = {"encoder_depth": encoder_depth}
        if arch.lower() in ("unet", "unetplusplus", "manet"):
            extra["decoder_channels"] = UNET_DECODER[-encoder_depth:]
        self.net = smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=encoder_weights,
            in_channels=in_channels,
            classes=num_classes,
            **extra,
        )
        head = self.net.segmentation_head
        self.net.segmentation_head = nn.Sequential(nn.Dropout2d(dropout), head)
        self.multiple = 2**encoder_depth

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, K, H, W) for an input (B, C, H, W) of any size."""
        return padded_forward(self.net, x, self.multiple)
