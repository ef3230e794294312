"""Training: config groups, overrides reaching objects, learning, resume, bad overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR, compose_config
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from glacier.data.loading import GlacierDataModule
from glacier.errors import GlacierInputError
from glacier.models import GlacierSegmenter
from glacier.tasks.train import build_module, run_train

FAST = [
    "data=synthetic",
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
SMALL_UNET = ["model.depth=3", "model.base_filters=8"]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset preprocessed once for the whole session."""
    root = tmp_path_factory.mktemp("train_data")
    cfg = compose_config("train", [*FAST, f"paths.data_dir={root}"], root)
    datamodule = instantiate(cfg.datamodule, _convert_="all")
    datamodule.prepare_data()
    return root


def train_cfg(tmp_path: Path, data_dir: Path, overrides: list[str]) -> DictConfig:
    """A train config on the shared synthetic dataset with outputs in ``tmp_path``."""
    small = (
        [] if any(o.startswith("model=") and o != "model=unet" for o in overrides) else SMALL_UNET
    )
    return compose_config(
        "train", [*FAST, *small, f"paths.data_dir={data_dir}", *overrides], tmp_path
    )


def setup_datamodule(cfg: DictConfig) -> GlacierDataModule:
    datamodule: GlacierDataModule = instantiate(cfg.datamodule, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("option", group_options("model"))
def test_model_options_build_for_the_data(tmp_path: Path, data_dir: Path, option: str) -> None:
    cfg = train_cfg(tmp_path, data_dir, [f"model={option}"])
    module = build_module(cfg, setup_datamodule(cfg))
    logits = module(torch.zeros(2, len(module.hparams["channel_names"]), 40, 56))
    assert logits.shape == (2, 3, 40, 56)  # background + clean_ice + debris


@pytest.mark.parametrize("option", group_options("loss"))
def test_loss_options_give_finite_gradients(tmp_path: Path, data_dir: Path, option: str) -> None:
    cfg = train_cfg(tmp_path, data_dir, [f"loss={option}"])
    module = build_module(cfg, setup_datamodule(cfg))
    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    target = torch.randint(0, 3, (2, 16, 16))
    target[:, :4] = 255
    loss = module.criterion(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("optimizer", group_options("optimizer"))
@pytest.mark.parametrize("scheduler", group_options("scheduler"))
def test_optimizer_and_scheduler_options(
    tmp_path: Path, data_dir: Path, optimizer: str, scheduler: str
) -> None:
    cfg = train_cfg(tmp_path, data_dir, [f"optimizer={optimizer}", f"scheduler={scheduler}"])
    module = build_module(cfg, setup_datamodule(cfg))
    configured = module.configure_optimizers()
    if scheduler == "none":
        assert isinstance(configured, torch.optim.Optimizer)
    else:
        assert configured["lr_scheduler"]["monitor"] == "val/iou_mean"
        assert configured["optimizer"].param_groups[0]["lr"] == cfg.optimizer.lr


@pytest.mark.parametrize("group", ["logger", "callbacks", "trainer", "debug", "experiment"])
def test_every_other_group_option_composes(tmp_path: Path, data_dir: Path, group: str) -> None:
    for option in group_options(group):
        cfg = train_cfg(tmp_path, data_dir, [f"{group}={option}"])
        OmegaConf.resolve(cfg)  # every interpolation resolves
        if group in ("logger", "callbacks"):
            built = [instantiate(node) for node in (cfg.get(group) or {}).values() if node]
            assert all(b is not None for b in built)
        if group == "trainer" and option == "cpu":
            assert instantiate(cfg.trainer).max_epochs == cfg.trainer.max_epochs


def test_hparams_search_optuna_composes(tmp_path: Path, data_dir: Path) -> None:
    cfg = train_cfg(tmp_path, data_dir, ["hparams_search=optuna"])
    assert cfg.optimized_metric == "val/iou_mean"


def test_dropout_and_classes_overrides_reach_objects(tmp_path: Path, data_dir: Path) -> None:
    cfg = train_cfg(tmp_path, data_dir, ["dropout=0.3", "classes=[debris]", "channels=rgb"])
    datamodule = setup_datamodule(cfg)
    assert datamodule.class_names == ["debris"]
    assert datamodule.channel_names == ["red", "green", "blue"]
    module = build_module(cfg, datamodule)
    rates = {m.p for m in module.net.modules() if isinstance(m, torch.nn.Dropout2d)}
    assert rates == {0.3}
    assert module(torch.zeros(1, 3, 32, 32)).shape[1] == 2
    batch = datamodule.prepare_batch(next(iter(datamodule.train_dataloader())), train=True)
    assert batch["image"].shape[1] == 3
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 255}


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("loss", group_options("loss"))
def test_fast_dev_run_every_model_and_loss(
    tmp_path: Path, data_dir: Path, model: str, loss: str
) -> None:
    overrides = [f"model={model}", f"loss={loss}", "trainer.fast_dev_run=true", "test=false"]
    cfg = train_cfg(tmp_path, data_dir, overrides)
    run_train(cfg)
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_short_fit_learns_and_writes_checkpoints(tmp_path: Path, data_dir: Path) -> None:
    cfg = train_cfg(
        tmp_path,
        data_dir,
        [
            "callbacks=default",
            "callbacks.prediction_panels=null",
            "callbacks.early_stopping=null",
            "callbacks.progress_bar=null",
            "trainer.max_epochs=12",
            "model.batch_norm=true",
            "loss=dice_ce",
            "optimizer.lr=0.01",
            "dropout=0.0",
            "seed=1",
        ],
    )
    run_train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["final_fit"]["train/iou_mean"] > 0.7, metrics["final_fit"]
    best = Path(metrics["best_checkpoint"])
    assert best.name == "best.ckpt" and (best.parent / "last.ckpt").is_file()
    assert "test/iou_mean" in metrics["test"]
    module = GlacierSegmenter.load_from_checkpoint(best, weights_only=True)
    assert module.hparams["channel_names"][:3] == ["blue", "green", "red"]
    assert module.hparams["class_names"] == ["clean_ice", "debris"]
    assert module.hparams["data"]["format_version"] == 2
    assert module.normalizer.scale.numel() == len(module.hparams["channel_names"])


def test_resume_from_last_checkpoint_continues(tmp_path: Path, data_dir: Path) -> None:
    common = [
        "callbacks=default",
        "callbacks.prediction_panels=null",
        "callbacks.progress_bar=null",
        "test=false",
    ]
    first = train_cfg(tmp_path / "a", data_dir, [*common, "trainer.max_epochs=1"])
    run_train(first)
    last = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0
    second = train_cfg(
        tmp_path / "b", data_dir, [*common, "trainer.max_epochs=3", f"ckpt_path={last}"]
    )
    run_train(second)
    resumed = torch.load(
        tmp_path / "b" / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert resumed["epoch"] == 2
    assert resumed["global_step"] == 3 * state["global_step"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("classes=[glacierz]", "glacierz"),
        ("channels=[red,thermal]", "thermal"),
        ("channels=nosuchset", "nosuchset"),
        ("+model.in_channels=9", "in_channels=9"),
    ],
)
def test_bad_overrides_fail_clearly(
    tmp_path: Path, data_dir: Path, override: str, message: str
) -> None:
    cfg = train_cfg(tmp_path, data_dir, [override])
    with pytest.raises(GlacierInputError, match=message):
        build_module(cfg, setup_datamodule(cfg))


def test_misspelled_key_is_rejected_by_hydra(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="dropuot"):
        train_cfg(tmp_path, data_dir, ["dropuot=0.3"])


def test_prediction_panels_are_written(tmp_path: Path, data_dir: Path) -> None:
    cfg = train_cfg(
        tmp_path,
        data_dir,
        [
            "callbacks=default",
            "callbacks.progress_bar=null",
            "callbacks.prediction_panels.every_n_epochs=1",
            "callbacks.prediction_panels.mc_samples=3",
            "logger=tensorboard",
            "trainer.max_epochs=2",
            "test=false",
        ],
    )
    run_train(cfg)
    panels = sorted((tmp_path / "run" / "panels").glob("*.png"))
    assert len(panels) == 2 * 4  # two epochs, four tiles each
    assert list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))


def test_demo_experiment_on_a_gpu_trainer_fits_the_accelerator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`experiment=demo trainer=gpu` as typed: Hydra applies the experiment after the trainer,
    so the experiment's settings must follow the trainer's accelerator (on a CPU-only machine
    with CUDA made to look present)."""
    import pytorch_lightning as pl

    on_cpu = compose_config("train", ["experiment=demo"], tmp_path)
    assert (on_cpu.trainer.deterministic, on_cpu.threads) == (True, 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    for trainer in ("gpu", "ddp"):
        cfg = compose_config("train", ["experiment=demo", f"trainer={trainer}"], tmp_path)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(resolved, dict)
        assert resolved["trainer"]["deterministic"] == "warn"  # CUDA's cross-entropy has none
        assert resolved["trainer"]["precision"] == "bf16-mixed"
        assert resolved["threads"] is None and resolved["datamodule"]["cache"] == "auto"
    assert cfg.trainer.accelerator == "auto"  # ddp: the GPU because CUDA is (made) available
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compose_config("train", ["experiment=demo"], tmp_path).trainer.deterministic is True
    try:  # Lightning takes the resolved value: deterministic kernels, warnings where none exist
        pl.Trainer(accelerator="cpu", deterministic="warn", logger=False)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
