"""Speed options of the pretraining loop on CPU (bf16 autocast, loader workers, the step timer) and the
`norm` option every built-in encoder takes for rank-independent multi-process training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecgcl.compose import parse_augmentations
from ecgcl.data.store import open_store
from ecgcl.distributed import is_main_process
from ecgcl.engine.session import distributed_session
from ecgcl.engine.loops import pretrain
from ecgcl.engine.settings import PretrainSettings, TrainingContext
from ecgcl.engine.speed import StepTimer, TrainOptions, current_options, training_options
from ecgcl.errors import EcgclError
from ecgcl.plugins.objectives.contrastive import Contrastive
from ecgcl.manager import create_plugin_manager

REGISTRY = create_plugin_manager(entry_points=False).registry
ENCODERS = ("cnn", "cnn_lstm", "cnn_attn_lstm", "cnn_transformer")


@pytest.mark.parametrize("name", ENCODERS)
def test_every_encoder_takes_a_norm(name):
    kinds = {}
    for norm in ("batch", "group", "none"):
        encoder = REGISTRY.create("encoder", name, in_leads=12, length=200, embed_dim=8, width=8, depth=1, norm=norm)
        kinds[norm] = {type(m) for m in encoder.modules()}
        out = encoder(torch.randn(3, 12, 200))
        assert out.shape == (3, 8) and torch.isfinite(out).all()
    assert nn.BatchNorm1d in kinds["batch"] and nn.GroupNorm not in kinds["batch"]
    assert nn.GroupNorm in kinds["group"] and nn.BatchNorm1d not in kinds["group"]
    assert not {nn.BatchNorm1d, nn.GroupNorm} & kinds["none"]
    # group norm is per sample: a recording's embedding does not depend on the rest of its batch
    encoder = REGISTRY.create("encoder", name, in_leads=12, length=200, embed_dim=8, width=8, depth=1, norm="group",
                              dropout=0.0).train()
    batch = torch.randn(4, 12, 200)
    torch.testing.assert_close(encoder(batch)[:2], encoder(batch[:2]), rtol=1e-4, atol=1e-5)
    with pytest.raises(EcgclError, match=f"encoder '{name}': norm must be one of"):
        REGISTRY.create("encoder", name, norm="layer")


def _pretrain(store, options, epochs=1):
    torch.manual_seed(0)
    encoder = REGISTRY.create("encoder", "cnn", in_leads=12, length=1000, embed_dim=16, width=8, depth=1)
    objective = Contrastive(16, parse_augmentations("noise", REGISTRY), REGISTRY.create("loss", "ntxent"), 16)
    settings = PretrainSettings(epochs=epochs, batch_size=16, lr=1e-3, weight_decay=0.0, seed=1, window=1000,
                                representation="time")
    history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(len(store)),
                       settings=settings, context=TrainingContext(torch.device("cpu"), options=options))
    return history, encoder.state_dict()


def test_loader_workers_give_the_same_training_and_the_timer_counts_steps(tiny_store):
    store = open_store(tiny_store)
    plain_history, plain_state = _pretrain(store, TrainOptions())
    timer = StepTimer(skip=1)
    history, state = _pretrain(store, TrainOptions(workers=2, pin_memory=True, timer=timer))
    assert history == plain_history  # workers and (CPU-ignored) pinning change nothing computed
    for name in plain_state:
        torch.testing.assert_close(state[name], plain_state[name], rtol=0, atol=0)
    assert timer.steps == len(store) // 16 - 1 and timer.samples == 16 * timer.steps
    assert 0 <= timer.data_fraction < 1 and timer.throughput > 0 and "ECGs/s" in timer.summary()


def test_bf16_autocast_trains_on_cpu_close_to_float32(tiny_store):
    store = open_store(tiny_store)
    plain, _ = _pretrain(store, TrainOptions())
    with training_options(TrainOptions(bf16=True)):
        assert current_options().bf16
        half, state = _pretrain(store, None)  # picks up the active options
    assert not current_options().bf16
    assert all(p.dtype == torch.float32 for p in state.values() if p.is_floating_point())
    assert half[0]["loss"] == pytest.approx(plain[0]["loss"], rel=0.05) and half[0]["loss"] != plain[0]["loss"]


def test_bf16_with_compile_is_refused_on_cpu(tiny_store):
    with pytest.raises(EcgclError, match="--bf16 together with --compile gives NaN losses on CPU"):
        _pretrain(open_store(tiny_store), TrainOptions(bf16=True, compile=True))


def test_options_are_checked_and_a_plain_process_is_rank_0():
    with pytest.raises(EcgclError, match="--workers must be an integer >= 0"):
        TrainOptions(workers=-1)
    with distributed_session("cpu") as session:
        assert (session.rank, session.world_size, session.backend, session.device.type) == (0, 1, None, "cpu")
        assert session.is_main and is_main_process()
