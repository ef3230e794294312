"""Exact resumption pieces (the real requeue runs on Slurm in tests/slurm/test_preemption.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from pytorch_lightning.strategies import SingleDeviceStrategy
from torch.utils.data import RandomSampler

from glacier.data.loading import Augment, EpochSampler, ResumableLoader, ShuffledOrder
from glacier.models import RandomStates, RequeueBetweenBatches
from glacier.models.requeue import global_random_states, set_global_random_states


def test_shuffled_order_draws_as_random_sampler_and_replays_from_a_position() -> None:
    torch.manual_seed(3)
    expected = [list(RandomSampler(range(10))) for _ in range(2)]
    torch.manual_seed(3)
    order = ShuffledOrder(10)
    assert [list(order), list(order)] == expected  # the batches of shuffle=True, unchanged
    state = order.state_dict()
    order.replay(state, 4)
    after = torch.get_rng_state()
    assert list(order) == expected[1][4:]
    assert torch.equal(torch.get_rng_state(), after)  # a replayed epoch draws no new seed
    assert list(order) != expected[1]  # then new epochs again


def test_epoch_sampler_replays_its_epoch_from_a_position() -> None:
    sampler = EpochSampler(5)
    sampler.set_epoch(3)
    state = sampler.state_dict()
    sampler.set_epoch(0)
    sampler.replay(state, 2)
    assert list(sampler) == [(3, 2), (3, 3), (3, 4)]
    assert list(sampler) == [(3, i) for i in range(5)]


def loader(order: Any) -> ResumableLoader:
    return ResumableLoader(list(range(10)), batch_size=3, sampler=order, drop_last=True)


def test_a_loader_restored_mid_epoch_hands_out_the_rest_of_that_epoch() -> None:
    torch.manual_seed(0)
    first = loader(ShuffledOrder(10))
    batches = iter(first)
    seen = [next(batches).tolist() for _ in range(2)]
    state = first.state_dict()
    rest = [b.tolist() for b in batches]
    assert state["batches"] == 2 and len(rest) == 1  # 3 batches of 3 (drop_last)

    second = loader(ShuffledOrder(10))
    second.load_state_dict(state)
    assert [b.tolist() for b in second] == rest
    assert second.state_dict()["batches"] == 3  # counts on from where it resumed
    assert len(second) == 3 and seen[0] != rest[0]


def test_random_states_round_trip_and_load_without_unpickling_code(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    states = global_random_states()
    drawn = (torch.rand(3), np.random.rand(3))
    torch.save({"states": states}, tmp_path / "states.ckpt")
    torch.rand(5), np.random.rand(5)
    set_global_random_states(torch.load(tmp_path / "states.ckpt", weights_only=True)["states"])
    assert torch.equal(torch.rand(3), drawn[0]) and np.array_equal(np.random.rand(3), drawn[1])


def test_random_states_are_restored_at_the_next_training_step_not_on_load() -> None:
    callback = RandomStates()
    torch.manual_seed(5)
    callback.load_state_dict(callback.state_dict())
    expected = torch.rand(2)
    torch.rand(9)  # e.g. what building a resumed run draws
    callback.on_train_batch_start(None, None, None, 0)  # type: ignore[arg-type]
    assert torch.equal(torch.rand(2), expected)


def test_augment_generators_resume_where_they_were() -> None:
    augment = Augment(seed=4)
    image, target = torch.rand(4, 2, 8, 8), torch.zeros(4, 8, 8, dtype=torch.long)
    mean, std = torch.zeros(2), torch.ones(2)
    augment(image, target, mean, std)
    state = augment.state_dict()
    expected = augment(image, target, mean, std)
    resumed = Augment(seed=4)
    resumed.load_state_dict(state)
    pairs = zip(resumed(image, target, mean, std), expected, strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_the_requeue_signal_waits_for_the_end_of_the_training_batch() -> None:
    calls: list[int] = []
    trainer = SimpleNamespace(strategy=SingleDeviceStrategy("cpu"))
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))
    try:
        callback = RequeueBetweenBatches()
        callback.on_train_start(None, None)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGUSR1)  # arrives in the middle of a batch
        assert calls == []
        callback.on_train_batch_end(trainer, None, None, None, 7)  # type: ignore[arg-type]
        assert calls == [signal.SIGUSR1]
        callback.on_train_batch_end(trainer, None, None, None, 8)  # type: ignore[arg-type]
        assert calls == [signal.SIGUSR1]  # once
        callback.on_train_end(None, None)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1] * 2  # the handler has its signal back
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_random_states_and_augmentation_resume_on_the_gpu() -> None:
    torch.cuda.manual_seed(2)
    torch.rand(1, device="cuda")  # CUDA initialized: its state is kept
    states = global_random_states()
    expected = torch.rand(4, device="cuda")
    torch.rand(9, device="cuda")
    set_global_random_states(states)
    assert torch.equal(torch.rand(4, device="cuda"), expected)
    augment = Augment(seed=4)
    image = torch.rand(4, 2, 8, 8, device="cuda")
    target = torch.zeros(4, 8, 8, dtype=torch.long, device="cuda")
    mean, std = torch.zeros(2, device="cuda"), torch.ones(2, device="cuda")
    augment(image, target, mean, std)
    resumed = Augment(seed=4)
    resumed.load_state_dict(augment.state_dict())
    ours, theirs = resumed(image, target, mean, std), augment(image, target, mean, std)
    assert ours[0].device.type == "cuda" and torch.equal(ours[0], theirs[0])
