"""The `cpc` objective (contrastive predictive coding): InfoNCE by hand, the loss against a loop over every
(record, step, offset), learning on real records and the one-line errors (exact resume is tested for every
objective in tests/test_objectives.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine.model import build_encoder
from ecgcl.engine.pretraining import PretrainEncoder, check_objective_fits
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Encoder
from ecgcl.manager import get_registry
from ecgcl.plugins.objectives.cpc import CPC, info_nce

TINY = {"width": 4, "depth": 2, "dropout": 0.0}


def tiny_cnn(length: int = 1000, **options) -> nn.Module:
    torch.manual_seed(0)
    return build_encoder(get_registry(), "cnn", in_leads=12, window=length, representation="time", embed_dim=8,
                         encoder_args={**TINY, **options})


def view(encoder: nn.Module, length: int = 1000) -> PretrainEncoder:
    return PretrainEncoder(encoder, window=length, representation="time")


def test_cpc_is_registered_and_needs_steps():
    component = get_registry().get("objective", "cpc")
    assert component.factory is CPC and CPC.needs == "sequence"
    assert {"steps_ahead", "context_dim"} <= set(component.parameter_names())


def test_info_nce_matches_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    predictions = torch.randn(3, 2, 4, generator=generator)  # (B, T, D)
    targets = torch.randn(3, 2, 4, generator=generator)
    terms = []
    for b in range(3):
        for t in range(2):
            logits = [sum(predictions[b, t, d].item() * targets[c, t, d].item() for d in range(4)) for c in range(3)]
            log_normaliser = math.log(sum(math.exp(v) for v in logits))
            terms.append(-(logits[b] - log_normaliser))  # -log softmax of the positive
    assert info_nce(predictions, targets).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_loss_is_the_mean_over_records_steps_and_offsets():
    encoder = tiny_cnn(length=64).eval()
    objective = CPC(encoder, steps_ahead=3, context_dim=5)
    batch = torch.randn(4, 12, 64)
    with torch.no_grad():
        loss = objective(view(encoder, 64), batch, torch.arange(4), torch.Generator())
        z = encoder.sequence(batch)
        context, _ = objective.context(z)
        terms = []
        for k in range(1, 4):
            for t in range(z.shape[1] - k):
                for b in range(4):
                    logits = z[:, t + k] @ objective.predictors[k - 1].weight @ context[b, t]
                    terms.append(-torch.log_softmax(logits, dim=0)[b])
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_loss_is_finite_and_decreases_on_real_records(losses_over_steps):
    store = open_store(sample_store_path())
    batch = torch.tensor(np.array(store.signals[:16]), dtype=torch.float32)
    encoder = tiny_cnn()
    losses = losses_over_steps(CPC(encoder), view(encoder), batch, steps=6, lr=0.01)
    assert losses[-1] < losses[0] - 0.05, losses


class PooledOnly(Encoder):
    """A tiny encoder with embeddings only (no `sequence`)."""

    def __init__(self, in_leads: int = 12, length: int = 100, embed_dim: int = 8) -> None:
        super().__init__(in_leads, length, embed_dim)
        self.linear = nn.Linear(in_leads, embed_dim)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.linear(batch.mean(dim=-1))


def test_an_encoder_without_steps_is_one_line_naming_both():
    with pytest.raises(EcgclError) as error:
        check_objective_fits("cpc", CPC.needs, "pooled_only", PooledOnly(), ["cnn", "cnn_lstm"])
    message = str(error.value)
    assert "'cpc'" in message and "'pooled_only'" in message and "\n" not in message
    with pytest.raises(EcgclError, match="cpc"):
        CPC(PooledOnly())


def test_too_few_steps_or_bad_options_name_the_option():
    with pytest.raises(EcgclError, match="steps_ahead") as error:
        CPC(tiny_cnn(length=32), steps_ahead=4)  # 32 samples -> 4 steps
    assert "\n" not in str(error.value)
    encoder = tiny_cnn()
    with pytest.raises(EcgclError, match="steps_ahead"):
        CPC(encoder, steps_ahead=0)
    with pytest.raises(EcgclError, match="context_dim"):
        CPC(encoder, context_dim=0)
    objective = CPC(encoder, steps_ahead=4)
    with pytest.raises(EcgclError, match="steps_ahead"):  # a shorter input at run time
        objective(view(encoder), torch.randn(2, 12, 32), torch.arange(2), torch.Generator())
