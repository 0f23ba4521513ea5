"""`cnn`: the convolutional front end, global average and max pooling over time, then a linear layer.

`sequence` gives the front end's per-step features (what CPC, van den Oord et al. 2018, calls z_t).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.interfaces import Encoder
from ecgcl.plugins.encoders.frontend import FRONT_END, ConvFrontEnd, FrontEndOptions


class CNNEncoder(Encoder):
    """Residual 1-D CNN with global average+max pooling: the fast baseline encoder."""

    def __init__(
        self,
        in_leads: int = 12,
        length: int = 1000,
        embed_dim: int = 128,
        width: int = FRONT_END.width,
        depth: int = FRONT_END.depth,
        kernel_size: int = FRONT_END.kernel_size,
        dropout: float = FRONT_END.dropout,
        norm: str = FRONT_END.norm,
    ) -> None:
        """`width` conv channels, `depth` residual blocks (each halves time), `dropout` inside blocks and before the
        output, `norm` after each convolution: batch, group (independent of batch splits) or none."""
        front_end = FrontEndOptions(width, depth, kernel_size, dropout, norm)
        front_end.check("cnn", embed_dim=embed_dim, in_leads=in_leads, length=length)
        super().__init__(in_leads, length, embed_dim)
        self.frontend = ConvFrontEnd.from_options(in_leads, front_end)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * width, embed_dim)
        self.sequence_dim = width

    def sequence(self, batch: Tensor) -> Tensor:
        """`(B, L, T) -> (B, T', width)`: the front end's per-step features in time order, before pooling."""
        self.check_input(batch)
        return self.frontend(batch).transpose(1, 2)

    def forward(self, batch: Tensor) -> Tensor:
        self.check_input(batch)
        features = self.frontend(batch)  # (B, C, T')
        pooled = torch.cat([features.mean(dim=-1), features.amax(dim=-1)], dim=1)
        return self.out(self.dropout(pooled))


__all__ = ["CNNEncoder"]
