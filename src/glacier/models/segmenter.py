"""LightningModule: a segmentation network with its loss, metrics, optimizer and scheduler."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics.classification import MulticlassConfusionMatrix

from glacier.data.contract import BACKGROUND, IGNORE_INDEX, checkpoint_contract
from glacier.errors import GlacierInputError
from glacier.models.losses import ordered_class_weights
from glacier.models.metrics import stage_metrics
from glacier.models.normalize import Normalizer
from glacier.models.pass_statistics import PassStats, StatsNeeds, pass_stats
from glacier.models.test_uncertainty import TestUncertainty
from glacier.models.tta import tta_stats
from glacier.models.uncertainty import Passes
from glacier.models.uncertainty_tally import UncertaintyEvaluation

STAGES = ("train", "val", "test")


class GlacierSegmenter(pl.LightningModule):
    """Train and evaluate a segmentation network on glacier slices.

    Everything is passed as plain config dictionaries (``_target_`` + arguments) so the
    checkpoint's hyperparameters rebuild the exact model for prediction, and load with
    ``weights_only=True``. The model takes raw values: its first module normalizes them with
    the dataset's statistics (buffers saved with the weights) and imputes nodata. ``forward``
    returns raw logits; the ``temperature`` buffer (1 until :mod:`glacier.models.calibration`
    fits it on dev after training; 1 in older checkpoints) divides them in every pass of the
    test step and of ``glacier predict``.

    Args:
        model: Network config; ``in_channels`` and ``num_classes`` are filled in here.
        loss: Loss config; ``class_weights`` may be given by class name.
        optimizer: Optimizer config with ``_partial_: true``.
        class_names: Selected classes (background is output 0).
        channel_names: Input channel names, in order.
        data: The dataset contract as a plain dict (:meth:`DatasetContract.to_dict`).
        scheduler: Scheduler config with ``_partial_: true``, or None.
        monitor: Metric the scheduler and checkpoints follow.
        channels_last: Use the channels-last memory format (faster U-Nets on CPU).
        normalization: Format-1 checkpoints only: statistics of the input channels.
        tta: Test step only: average the probabilities over the 8 flips/90° rotations
            (:func:`~glacier.models.tta.tta_probabilities`).
        test_mc_samples: Test step only: MC-dropout passes per transform (0 = none).
        test_seed: Seed of the test-time MC-dropout draws (plus the batch index).
    """

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        class_names: list[str],
        channel_names: list[str],
        data: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        monitor: str = "val/iou_mean",
        channels_last: bool = True,
        normalization: dict[str, list[Any]] | None = None,
        tta: bool = False,
        test_mc_samples: int = 0,
        test_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.contract = checkpoint_contract(data, normalization, class_names)
        assert self.contract.stats is not None
        self.class_names = list(class_names)
        self.channel_names = list(channel_names)
        self.output_names = [BACKGROUND, *self.class_names]
        self.normalizer = Normalizer(*self.contract.stats.of(self.channel_names))
        self.net = self.build_model()
        self.criterion = self.build_loss()
        self.confusion = nn.ModuleDict(
            {
                f"{stage}_confusion": MulticlassConfusionMatrix(
                    len(self.output_names), ignore_index=IGNORE_INDEX
                )
                for stage in STAGES
            }
        )
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.register_buffer("temperature", torch.ones(()))
        self.test_uncertainty: UncertaintyEvaluation | None = None
        self._test_tally: TestUncertainty | None = None

    def _confusion(self, stage: str) -> MulticlassConfusionMatrix:
        """The confusion-matrix metric of a stage."""
        metric = self.confusion[f"{stage}_confusion"]
        assert isinstance(metric, MulticlassConfusionMatrix)
        return metric

    def build_model(self) -> nn.Module:
        """Instantiate the network for the selected channels and classes."""
        config = dict(self.hparams["model"])
        channels = len(self.hparams["channel_names"])
        for key, wanted in (("in_channels", channels), ("num_classes", len(self.output_names))):
            given = config.pop(key, None)
            if given is not None and given != wanted:
                raise GlacierInputError(
                    f"model.{key}={given} does not fit the data: channels "
                    f"{self.hparams['channel_names']} and classes {self.output_names} need {wanted}"
                )
        try:
            net: nn.Module = instantiate(
                config,
                in_channels=channels,
                num_classes=len(self.output_names),
            )
        except Exception as error:  # hydra wraps constructor errors; keep the cause visible
            raise GlacierInputError(
                f"cannot build model {config.get('_target_')} for "
                f"{len(self.hparams['channel_names'])} channels: {error}"
            ) from error
        return net

    def build_loss(self) -> nn.Module:
        """Instantiate the loss with class weights in output order."""
        config = dict(self.hparams["loss"])
        known = self.contract.classes
        weights = ordered_class_weights(config.pop("class_weights", None), self.class_names, known)
        if weights is not None:
            config["class_weights"] = weights
        criterion: nn.Module = instantiate(config)
        return criterion

    def forward(self, image: Tensor) -> Tensor:
        """Logits (B, K, H, W) for a raw (B, C, H, W) image batch (NaN = nodata)."""
        return self.classify(self.normalizer(image))

    def classify(self, image: Tensor) -> Tensor:
        """Logits (B, K, H, W) for a normalized image batch (the network after the normalizer)."""
        if self.hparams["channels_last"]:
            image = image.contiguous(memory_format=torch.channels_last)
        logits: Tensor = self.net(image)
        return logits

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Give format-1 checkpoints (statistics in hyperparameters) their normalizer buffers."""
        state = checkpoint.get("state_dict", {})
        for name, buffer in self.normalizer.named_buffers():
            state.setdefault(f"normalizer.{name}", buffer.detach().clone())
        state.setdefault("temperature", torch.ones(()))  # checkpoints from before calibration

    @property
    def temperature_value(self) -> float:
        """The calibration temperature as a number (1 = uncalibrated)."""
        return float(self.get_buffer("temperature"))

    def test_passes(self) -> Passes:
        """The passes of the test step: TTA views, MC-dropout passes, temperature."""
        return Passes(
            views=8 if self.hparams.get("tta", False) else 1,
            mc_samples=int(self.hparams.get("test_mc_samples", 0)),
            temperature=self.temperature_value,
        )

    def test_outputs(
        self, image: Tensor, batch_idx: int, needs: StatsNeeds | None = None
    ) -> tuple[Tensor, PassStats]:
        """Logits of the test step and the means of its passes' statistics.

        Plain logits, or log-probabilities averaged by TTA / MC dropout; every pass's logits
        are divided by the temperature first. The statistics hold everything the uncertainty
        measures of these passes need.

        Args:
            image: Raw (B, C, H, W) batch.
            batch_idx: Batch number (seeds the MC-dropout draws of this batch).
            needs: The statistics to return (default: what this model's test passes define; an
                ensemble asks for what its passes, all members together, define).

        Returns:
            (B, K, H, W) logits (their softmax is the averaged probability) and the statistics.
        """
        passes = self.test_passes()
        temperature = passes.temperature
        if needs is None:
            needs = StatsNeeds.of(passes.available(), uncalibrated=temperature != 1.0)
        if passes.count == 1:
            raw: Tensor = self(image)
            logits = raw if temperature == 1.0 else raw / temperature
            return logits, pass_stats(raw.detach(), temperature, needs)
        seed = int(self.hparams.get("test_seed", 0)) + batch_idx
        stats = tta_stats(self, image, passes.views, passes.mc_samples, seed, temperature, needs)
        return stats.probs.clamp_min(1e-8).log(), stats

    def test_logits(self, image: Tensor, batch_idx: int) -> Tensor:
        """The logits of :meth:`test_outputs`."""
        return self.test_outputs(image, batch_idx)[0]

    def _step(self, batch: dict[str, Tensor], stage: str, logits: Tensor | None = None) -> Tensor:
        logits = self(batch["image"]) if logits is None else logits
        loss: Tensor = self.criterion(logits, batch["mask"])
        self._confusion(stage).update(logits.argmax(dim=1), batch["mask"])
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=stage != "train",
            batch_size=batch["image"].shape[0],
        )
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate validation loss and confusion."""
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate test loss, confusion and uncertainty quality (with TTA / MC dropout)."""
        logits, stats = self.test_outputs(batch["image"], batch_idx)
        self._step(batch, "test", logits)
        if self._test_tally is not None:
            self._test_tally.update(stats, logits.argmax(dim=1), batch["mask"])

    def on_test_epoch_start(self) -> None:
        """Start tallying the uncertainty measures of the test passes."""
        self._test_tally = TestUncertainty(self.test_passes())

    def epoch_metrics(self, stage: str) -> dict[str, float]:
        """Per-class IoU/precision/recall/F1 and mean IoU pooled over the epoch.

        Args:
            stage: ``train``, ``val`` or ``test``.

        Returns:
            Metric values keyed ``{stage}/{metric}_{class}`` and ``{stage}/iou_mean``.
        """
        matrix = self._confusion(stage).compute().cpu().numpy()
        return stage_metrics(matrix, self.output_names, stage)

    def _log_epoch(self, stage: str) -> None:
        metrics = self.epoch_metrics(stage)
        mean_iou = metrics.pop(f"{stage}/iou_mean")
        self.log_dict(metrics, prog_bar=False)
        self.log(f"{stage}/iou_mean", mean_iou, prog_bar=True)
        self._confusion(stage).reset()

    def on_train_epoch_end(self) -> None:
        """Log pooled training metrics."""
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Log pooled validation metrics."""
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        """Log pooled test metrics and the quality of the test passes' uncertainty."""
        self._log_epoch("test")
        if self._test_tally is not None:
            self.test_uncertainty = self._test_tally.result()
            self.log_dict(TestUncertainty.scalars(self.test_uncertainty, "test"))
            self._test_tally = None

    def configure_optimizers(self) -> Any:
        """Optimizer and (optional) scheduler from config; plateau steps on ``monitor``."""
        optimizer = instantiate(self.hparams["optimizer"])(params=self.parameters())
        if not self.hparams["scheduler"]:
            return optimizer
        scheduler = instantiate(self.hparams["scheduler"])(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.hparams["monitor"],
                "interval": "epoch",
                "frequency": 1,
            },
        }
