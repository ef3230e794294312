"""Training callbacks: image panels (prediction, MC-dropout spread), weight EMA, the dev curve."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.trainer.states import TrainerFn

from glacier.models.mc_dropout import mc_dropout_sampling
from glacier.viz import tile_panel, to_display_rgb

log = logging.getLogger(__name__)


def mc_predict(
    module: pl.LightningModule, image: torch.Tensor, samples: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predicted classes and, with ``samples`` > 1, the MC-dropout std of the top class.

    Args:
        module: The segmenter.
        image: (B, C, H, W) raw batch on the module's device (the module normalizes it).
        samples: Stochastic passes (0 or 1 = deterministic only).

    Returns:
        (B, H, W) class indices and (B, H, W) spread or None.
    """
    with torch.inference_mode():
        probs = module(image).softmax(dim=1)
        classes = probs.argmax(dim=1)
        if samples <= 1:
            return classes.cpu().numpy(), None
        with mc_dropout_sampling(module):
            draws = torch.stack([module(image).softmax(dim=1) for _ in range(samples)])
        top = draws.mean(0).argmax(dim=1, keepdim=True)
        spread = draws.gather(2, top.unsqueeze(0).expand(samples, -1, -1, -1, -1)).std(0)[:, 0]
    return classes.cpu().numpy(), spread.cpu().numpy()


class PredictionPanels(pl.Callback):
    """Every ``every_n_epochs`` validation epochs, log panels of a few validation tiles.

    Panels go to W&B (``wandb.Image``) or TensorBoard when those loggers are active, and are
    always saved as PNGs under ``{run_dir}/panels/``.

    Args:
        every_n_epochs: Logging period in epochs.
        max_samples: Tiles per panel.
        mc_samples: MC-dropout passes for the uncertainty column (0 = none).
        rgb_channels: Input channel names shown as RGB (falls back to the first three).
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        max_samples: int = 4,
        mc_samples: int = 8,
        rgb_channels: tuple[str, str, str] = ("red", "green", "blue"),
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.max_samples = max_samples
        self.mc_samples = mc_samples
        self.rgb_channels = rgb_channels

    def _rgb_indices(self, channel_names: list[str]) -> list[int]:
        if all(c in channel_names for c in self.rgb_channels):
            return [channel_names.index(c) for c in self.rgb_channels]
        return [min(i, len(channel_names) - 1) for i in range(3)]

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Render and log the panels (rank 0 only: the others would write the same files)."""
        epoch = trainer.current_epoch
        if trainer.sanity_checking or (epoch + 1) % self.every_n_epochs:
            return
        if not trainer.is_global_zero:
            return
        loaders: Any = trainer.val_dataloaders
        raw = next(iter(loaders))
        raw = {key: value[: self.max_samples].to(pl_module.device) for key, value in raw.items()}
        datamodule: Any = getattr(trainer, "datamodule", None)
        batch = raw if "image" in raw else datamodule.prepare_batch(raw, train=False)
        image = batch["image"]
        classes, spread = mc_predict(pl_module, image, self.mc_samples)
        rgb = self._rgb_indices(list(pl_module.hparams["channel_names"]))
        figures = []
        for i in range(len(image)):
            display = to_display_rgb(image[i].cpu().numpy(), rgb)
            label = batch["mask"][i].cpu().numpy()
            uncertainty = None if spread is None else spread[i]
            figures.append(tile_panel(display, label, classes[i], uncertainty))
        self._publish(trainer, figures, epoch)

    def _publish(self, trainer: pl.Trainer, figures: list[Any], epoch: int) -> None:
        out_dir = Path(trainer.default_root_dir) / "panels"
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, figure in enumerate(figures):
            figure.savefig(out_dir / f"epoch{epoch:03d}_{i}.png", dpi=80)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log(
                    {"val/panels": [wandb.Image(f) for f in figures], "epoch": epoch}
                )
            elif isinstance(logger, TensorBoardLogger):
                for i, figure in enumerate(figures):
                    logger.experiment.add_figure(f"val/panel_{i}", figure, global_step=epoch)


class WeightEMA(EMAWeightAveraging):
    """An exponential moving average of the weights, validated, checkpointed and tested.

    Lightning's :class:`~pytorch_lightning.callbacks.EMAWeightAveraging` validates and saves the
    averaged weights (a checkpoint's ``state_dict`` holds them, so prediction loads them), but
    when a checkpoint is loaded for testing after fitting it restores the raw weights. Here,
    outside fitting, the checkpoint's ``state_dict`` (the average) is what the model keeps, so
    ``trainer.test(ckpt_path=best)`` scores the model that prediction will use.

    Args:
        decay: EMA decay per optimizer step (0.99 averages over roughly the last 100 steps).
        update_starting_at_step: First step that updates the average (None = from the start).
    """

    def __init__(self, decay: float = 0.99, update_starting_at_step: int | None = None) -> None:
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Restore the raw weights and the average when resuming a fit; else keep the average."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


class DevCurve(pl.Callback):
    """Record the monitored dev score after every validation, as ``(epoch, value)`` points.

    The curve goes into ``metrics.json``; the checkpoint policy of a cross-validation is chosen
    on the folds' mean curve (:mod:`glacier.tasks.cv`). It is kept in checkpoints, so a resumed
    run continues it (Lightning runs its checkpoint callbacks after this one).

    Args:
        monitor: The metric (``val/iou_mean``).
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.points: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Add the epoch's score (not during the sanity check)."""
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        epoch = int(trainer.current_epoch)
        self.points = [p for p in self.points if p[0] != epoch] + [(epoch, float(value))]

    def state_dict(self) -> dict[str, Any]:
        """The points so far."""
        return {"points": [list(point) for point in self.points]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the curve of a checkpoint."""
        self.points = [(int(epoch), float(value)) for epoch, value in state_dict["points"]]
