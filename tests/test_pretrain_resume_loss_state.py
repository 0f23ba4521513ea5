"""A loss with learnable parameters (a learnable temperature) is checkpointed with its objective in `pretrain.last.pt`
and restored on resume: an interrupted and resumed pretraining equals the uninterrupted one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ecgcl.compose import parse_augmentations
from ecgcl.context import RuntimeContext
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine.loops import pretrain
from ecgcl.engine.settings import Checkpoints, PretrainSettings, TrainingContext
from ecgcl.engine.model import build_encoder
from ecgcl.plugins.objectives.contrastive import Contrastive
from ecgcl.manager import get_registry


class LearnableTemperatureNTXent(nn.Module):
    """NT-Xent whose temperature is learned (log-parametrised), as in CLIP (Radford et al., ICML 2021)."""

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.5)))

    def forward(self, z1, z2, patient_ids=None):
        z = nn.functional.normalize(torch.cat([z1, z2]), dim=1)
        logits = z @ z.T / self.log_temperature.exp()
        n = len(z1)
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
        return nn.functional.cross_entropy(logits, targets)


def _pretrain(where, on_epoch_end=None):
    store = open_store(sample_store_path())
    registry = get_registry()
    torch.manual_seed(0)
    encoder = build_encoder(registry, "cnn", in_leads=12, window=store.signals.shape[2], representation="time",
                            embed_dim=8, encoder_args={"width": 4, "depth": 1})
    loss = LearnableTemperatureNTXent()
    augmentation = parse_augmentations("noise", registry, RuntimeContext.of_store(store, torch.device("cpu")))
    objective = Contrastive(8, augmentation, loss, projection_dim=8)
    settings = PretrainSettings(epochs=3, batch_size=32, lr=0.05, weight_decay=0.0, seed=3,
                                window=store.signals.shape[2], representation="time")
    context = TrainingContext(torch.device("cpu"), Checkpoints(last_path=where / "pretrain.last.pt"),
                              on_epoch_end=on_epoch_end)
    history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(96), settings=settings,
                       context=context)
    return history, encoder, loss


def test_interrupted_and_resumed_pretraining_restores_the_learnable_loss(tmp_path, resume_equals_uninterrupted):
    (_, _, whole_loss), _ = resume_equals_uninterrupted(_pretrain, tmp_path)
    assert whole_loss.log_temperature.item() != pytest.approx(math.log(0.5))  # it did learn
