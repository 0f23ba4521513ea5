"""The `byol` and `vicreg` objectives: they train on real records, BYOL's momentum target follows the paper's cosine
schedule exactly and never gets a gradient, VICReg's terms match the paper's formulas, and an interrupted BYOL
pretraining (its EMA target included) resumes to the numbers of the uninterrupted one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ecgcl.compose import parse_augmentations
from ecgcl.context import RuntimeContext
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine.loops import pretrain
from ecgcl.engine.settings import Checkpoints, PretrainSettings, TrainingContext
from ecgcl.engine.model import build_encoder
from ecgcl.engine.pretraining import PretrainEncoder
from ecgcl.manager import get_registry
from ecgcl.plugins.objectives.ema import ema_momentum
from ecgcl.plugins.objectives.vicreg import vicreg_terms

WINDOW = 1000


@pytest.fixture(scope="module")
def store():
    return open_store(sample_store_path())


def _encoder(seed: int = 0, **encoder_args):
    torch.manual_seed(seed)
    return build_encoder(get_registry(), "cnn", in_leads=12, window=WINDOW, representation="time", embed_dim=8,
                         encoder_args={"width": 4, "depth": 1, **encoder_args})


def _objective(name: str, encoder, store, aug: str = "permute+noise", **options):
    registry = get_registry()
    augmentation = parse_augmentations(aug, registry, RuntimeContext.of_store(store, torch.device("cpu")))
    runtime = {"encoder": encoder, "projection_dim": 8} if name == "byol" else {}
    return registry.create("objective", name, embed_dim=8, augmentation=augmentation, **runtime, **options)


def _online_params(encoder, objective):
    return [*encoder.parameters(), *(p for p in objective.parameters() if p.requires_grad)]


@pytest.mark.parametrize("name", ["byol", "vicreg"])
def test_loss_is_finite_and_decreases_on_a_fixed_batch_of_real_records(store, name, losses_over_steps):
    encoder = _encoder()
    objective = _objective(name, encoder, store)
    assert objective.takes_loss is False
    view = PretrainEncoder(encoder, window=WINDOW, representation="time")
    batch = torch.tensor(store.signals[:16], dtype=torch.float32)
    losses = losses_over_steps(objective, view, batch, steps=8, lr=1e-2)  # the same views each step
    assert losses[-1] < losses[0], losses


def test_byol_tau_follows_the_cosine_schedule_from_base_to_one():
    assert ema_momentum(0, 100, 0.996) == 0.996
    assert ema_momentum(99, 100, 0.996) == 1.0
    assert ema_momentum(50, 101, 0.996) == pytest.approx(0.998)  # half way: (cos(pi / 2) + 1) / 2 = 1 / 2
    assert ema_momentum(0, 1, 0.99) == 0.99  # a one-step run makes the paper's first update


def test_byol_ema_update_equals_the_hand_computation(store):
    encoder = _encoder()
    objective = _objective("byol", encoder, store, momentum=0.5)
    pairs = [(encoder, objective.target_encoder), (objective.projection, objective.target_projection)]
    for online, target in pairs:  # the target starts as a copy of the online networks
        assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    total = 10
    for step in (0, 4, total - 1):
        with torch.no_grad():
            for p in _online_params(encoder, objective):
                p.add_(torch.randn_like(p))  # stands in for an optimizer step
        before = [[(o.detach().clone(), t.clone()) for o, t in zip(a.parameters(), b.parameters())] for a, b in pairs]
        objective.after_step(step, total)
        tau = 1 - (1 - 0.5) * (math.cos(math.pi * step / (total - 1)) + 1) / 2  # 0.5 at step 0, 1 at the last
        for (online, target), old in zip(pairs, before):
            for p_target, (o, t) in zip(target.parameters(), old):
                if step == total - 1:
                    assert tau == 1.0 and torch.equal(p_target, t)
                else:
                    torch.testing.assert_close(p_target, tau * t + (1 - tau) * o, rtol=0, atol=1e-6)
    assert {step: ema_momentum(step, total, 0.5) for step in (0, 9)} == {0: 0.5, 9: 1.0}


def test_byol_target_gets_no_gradient_and_no_optimizer_step(store):
    encoder = _encoder()
    objective = _objective("byol", encoder, store)
    targets = [*objective.target_encoder.parameters(), *objective.target_projection.parameters()]
    assert targets and not any(p.requires_grad for p in targets)
    view = PretrainEncoder(encoder, window=WINDOW, representation="time")
    batch = torch.tensor(store.signals[:8], dtype=torch.float32)
    objective(view, batch, torch.arange(8), torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is None for p in targets)
    assert all(p.grad is not None for p in [*encoder.parameters(), *objective.predictor.parameters()])
    # with momentum 1 the target never moves: neither the optimizer (weight decay included) nor the EMA touch it
    encoder = _encoder()
    objective = _objective("byol", encoder, store, momentum=1.0)
    start = {k: v.clone() for k, v in objective.state_dict().items() if k.startswith("target_")}
    settings = PretrainSettings(epochs=1, batch_size=16, lr=0.05, weight_decay=0.1, seed=1, window=WINDOW,
                                representation="time")
    pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(32), settings=settings,
             context=TrainingContext(torch.device("cpu")))
    after = objective.state_dict()
    for key, value in start.items():
        if "running" not in key and "num_batches" not in key:  # batch-norm statistics are the target's own
            assert torch.equal(after[key], value), key
    assert not torch.equal(after["projection.net.0.weight"], start["target_projection.net.0.weight"])


def test_vicreg_terms_equal_the_papers_formulas_on_numbers_computed_by_hand():
    z1 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 3.0]])
    z2 = 0.5 * z1
    inv, var, cov = vicreg_terms(z1, z2)
    # invariance: mean of (z1 - z2)^2 = 0.25 * mean(z1^2) = 0.25 * (1 + 4 + 9) / 6
    assert inv.item() == pytest.approx(7 / 12)
    # variance: z1's columns have unbiased variances 1 and 3 (std >= gamma = 1: no penalty); z2's have 0.25, 0.75
    assert var.item() == pytest.approx(((1 - math.sqrt(0.25 + 1e-4)) + (1 - math.sqrt(0.75 + 1e-4))) / 2)
    # covariance: z1's off-diagonal covariance is ((-1)(-1) + 0 + 1 * 2) / 2 = 1.5, z2's 1.5 / 4;
    # c(Z) = 2 * cov^2 / dim with dim = 2
    assert cov.item() == pytest.approx(1.5**2 + 0.375**2)


def test_vicreg_weights_combine_the_terms(store):
    objective = _objective("vicreg", _encoder(), store, sim_weight=2.0, var_weight=3.0, cov_weight=0.5,
                           expander_dim=6)
    assert objective.expander[-1].out_features == 6
    view = PretrainEncoder(_encoder(dropout=0.0), window=WINDOW, representation="time")
    batch = torch.tensor(store.signals[:8], dtype=torch.float32)
    loss = objective(view, batch, torch.arange(8), torch.Generator().manual_seed(0))
    v1, v2 = objective.augmentation.views(batch, torch.Generator().manual_seed(0))
    inv, var, cov = vicreg_terms(objective.expander(view.embed(v1)), objective.expander(view.embed(v2)))
    torch.testing.assert_close(loss, 2.0 * inv + 3.0 * var + 0.5 * cov)


def _byol_pretrain(store, where, on_epoch_end=None):
    encoder = _encoder(seed=0)
    objective = _objective("byol", encoder, store, aug="noise", momentum=0.9)
    settings = PretrainSettings(epochs=2, batch_size=16, lr=0.05, weight_decay=0.0, seed=3, window=WINDOW,
                                representation="time")
    context = TrainingContext(torch.device("cpu"), Checkpoints(last_path=where / "pretrain.last.pt"),
                              on_epoch_end=on_epoch_end)
    history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(32), settings=settings,
                       context=context)
    return history, encoder, objective


def test_interrupted_and_resumed_byol_equals_the_uninterrupted_run(store, tmp_path, resume_equals_uninterrupted):
    _, (_, _, objective) = resume_equals_uninterrupted(lambda where, stop: _byol_pretrain(store, where, stop),
                                                       tmp_path)
    initial = _objective("byol", _encoder(seed=0), store, aug="noise").state_dict()  # the same seeded draws
    for key in ("target_encoder.out.weight", "target_projection.net.0.weight"):
        assert not torch.equal(objective.state_dict()[key], initial[key]), key  # the EMA moved the target


@pytest.mark.parametrize("name, options, message", [
    ("byol", {"momentum": 1.5}, "momentum must be in"),
    ("vicreg", {"expander_dim": 0}, "expander_dim must be a positive integer"),
    ("vicreg", {"cov_weight": -1.0}, "cov_weight must be a number >= 0"),
])
def test_out_of_range_options_are_refused(store, name, options, message):
    with pytest.raises(ValueError, match=message):
        _objective(name, _encoder(), store, **options)
