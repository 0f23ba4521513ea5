"""`cnn`: the convolutional front end, global average and max pooling over time, then a linear layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.interfaces import Encoder
from ecgcl.plugins.encoders.frontend import ConvFrontEnd, check_options


class CNNEncoder(Encoder):
    """Residual 1-D CNN with global average+max pooling: the fast baseline encoder."""

    def __init__(
        self,
        in_leads: int = 12,
        length: int = 1000,
        embed_dim: int = 128,
        width: int = 16,
        depth: int = 3,
        kernel_size: int = 7,
        dropout: float = 0.1,
        norm: str = "batch",
    ) -> None:
        """`width` conv channels, `depth` residual blocks (each halves time), `dropout` inside blocks and before the
        output, `norm` after each convolution: batch, group (independent of batch splits) or none."""
        check_options("cnn", width=width, depth=depth, kernel_size=kernel_size, dropout=dropout, norm=norm,
                      embed_dim=embed_dim, in_leads=in_leads, length=length)
        super().__init__(in_leads, length, embed_dim)
        self.frontend = ConvFrontEnd(in_leads, width, depth, kernel_size, dropout, norm=norm)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * width, embed_dim)

    def forward(self, batch: Tensor) -> Tensor:
        self.check_input(batch)
        features = self.frontend(batch)  # (B, C, T')
        pooled = torch.cat([features.mean(dim=-1), features.amax(dim=-1)], dim=1)
        return self.out(self.dropout(pooled))


__all__ = ["CNNEncoder"]
