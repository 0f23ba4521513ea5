"""Heads that sit on top of an encoder: the SimCLR projection head and the fine-tuning classifier.

Both are separate modules from the encoder so that fine-tuning keeps only the encoder (SimCLR, Chen et
al., ICML 2020, computes the contrastive loss on g(h) but transfers h).
"""

from __future__ import annotations

from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints


class ProjectionHead(nn.Module):
    """SimCLR's MLP projection g(h) = W2 ReLU(W1 h), optionally with batch norm after W1 (SimCLR v2 style)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, batch_norm: bool = False) -> None:
        super().__init__()
        require_positive_ints("ProjectionHead", in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        """(B, in_dim) representations -> (B, out_dim) projections for the contrastive loss."""
        return self.net(h)


class ClassifierHead(nn.Module):
    """Dropout then a linear layer giving one logit per output (use `BCEWithLogitsLoss` for multi-label)."""

    def __init__(self, in_dim: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        require_positive_ints("ClassifierHead", in_dim=in_dim, num_outputs=num_outputs)
        if not 0.0 <= dropout < 1.0:
            raise EcgclError(f"ClassifierHead: dropout must be in [0, 1), got {dropout!r}")
        self.in_dim, self.num_outputs = in_dim, num_outputs
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, num_outputs)

    def forward(self, h: Tensor) -> Tensor:
        """(B, in_dim) representations -> (B, num_outputs) logits (no sigmoid/softmax applied)."""
        return self.linear(self.dropout(h))


__all__ = ["ClassifierHead", "ProjectionHead"]
