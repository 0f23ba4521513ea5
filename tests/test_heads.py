"""The projection head (SimCLR MLP) and the classifier head (logits for BCEWithLogitsLoss)."""

from __future__ import annotations

import pytest
import torch

from ecgcl.errors import EcgclError
from ecgcl.engine.heads import ClassifierHead, ProjectionHead


@pytest.mark.parametrize("batch_norm", [False, True])
def test_projection_head_shapes_and_gradients(batch_norm):
    torch.manual_seed(0)
    head = ProjectionHead(32, 64, 16, batch_norm=batch_norm)
    h = torch.randn(5, 32, requires_grad=True)
    z = head(h)
    assert z.shape == (5, 16)
    z.square().sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_projection_head_is_an_mlp_with_one_hidden_layer():
    head = ProjectionHead(8, 12, 4)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 12), (12, 4)]
    assert any(isinstance(m, torch.nn.ReLU) for m in head.modules())


def test_classifier_head_outputs_multilabel_logits():
    torch.manual_seed(0)
    head = ClassifierHead(16, 5, dropout=0.2)
    h = torch.randn(7, 16)
    logits = head(h)
    assert logits.shape == (7, 5)
    assert (logits < 0).any() and (logits > 0).any()  # raw logits, not probabilities
    targets = torch.zeros(7, 5)
    targets[:, [0, 3]] = 1.0  # several labels per record
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    criterion = torch.nn.BCEWithLogitsLoss()
    head.eval()  # dropout off so the before/after comparison is exact
    before = criterion(head(h), targets).item()
    for _ in range(10):
        optimizer.zero_grad()
        criterion(head(h), targets).backward()
        optimizer.step()
    assert criterion(head(h), targets).item() < before


def test_classifier_head_dropout_only_in_training():
    torch.manual_seed(0)
    head = ClassifierHead(16, 3, dropout=0.5).eval()
    h = torch.randn(4, 16)
    assert torch.equal(head(h), head(h))
    assert torch.equal(head(h), head.linear(h))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ProjectionHead(0, 8, 4), "in_dim"),
        (lambda: ProjectionHead(8, 8, -1), "out_dim"),
        (lambda: ClassifierHead(8, 0), "num_outputs"),
        (lambda: ClassifierHead(8, 2, dropout=1.0), "dropout"),
    ],
)
def test_heads_reject_bad_sizes(build, message):
    with pytest.raises(EcgclError, match=message):
        build()
