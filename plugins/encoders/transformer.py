"""`cnn_transformer`: the convolutional front end, sinusoidal positions, self-attention layers, mean pooling.

The positional encoding is the fixed sinusoid of Vaswani et al. (NeurIPS 2017), so it needs no maximum
length; layers are pre-norm (Xiong et al., ICML 2020), which trains stably without warm-up tricks.

`sequence` gives the convolutional front end's per-step features, not the attention outputs: CPC's z_t are the
per-step encoder features (van den Oord et al. 2018), and unmasked self-attention mixes every step with the
future ones, which step objectives must predict. Pretraining through `sequence` leaves attention to fine-tuning.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Encoder
from ecgcl.plugins.encoders.frontend import FRONT_END, ConvFrontEnd, FrontEndOptions


def sinusoidal_positions(steps: int, channels: int) -> Tensor:
    """`(steps, channels)` fixed sine/cosine position codes (Vaswani et al., 2017)."""
    position = torch.arange(steps, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    codes = torch.zeros(steps, channels)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: channels // 2])
    return codes


class CNNTransformerEncoder(Encoder):
    """Residual CNN front end, then `layers` pre-norm self-attention layers with sinusoidal positions, then mean pooling."""

    def __init__(
        self,
        in_leads: int = 12,
        length: int = 1000,
        embed_dim: int = 128,
        width: int = FRONT_END.width,
        depth: int = FRONT_END.depth,
        kernel_size: int = FRONT_END.kernel_size,
        dropout: float = FRONT_END.dropout,
        heads: int = 4,
        layers: int = 2,
        ff_mult: int = 2,
        norm: str = FRONT_END.norm,
    ) -> None:
        """`width` is also the attention model size (divisible by `heads`); feed-forward size is `ff_mult * width`;
        `norm` is the conv front end's normalisation (batch, group or none)."""
        front_end = FrontEndOptions(width, depth, kernel_size, dropout, norm)
        front_end.check("cnn_transformer", heads=heads, layers=layers, ff_mult=ff_mult, embed_dim=embed_dim,
                        in_leads=in_leads, length=length)
        if width % heads:
            raise EcgclError(f"encoder 'cnn_transformer': width ({width}) must be divisible by heads ({heads})")
        super().__init__(in_leads, length, embed_dim)
        self.frontend = ConvFrontEnd.from_options(in_leads, front_end)
        steps = self.frontend.output_length(length)
        self.register_buffer("positions", sinusoidal_positions(steps, width), persistent=False)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=ff_mult * width, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.attention = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, embed_dim)
        self.sequence_dim = width

    def sequence(self, batch: Tensor) -> Tensor:
        """`(B, L, T) -> (B, T', width)`: the front end's per-step features in time order (before attention)."""
        self.check_input(batch)
        return self.frontend(batch).transpose(1, 2)

    def forward(self, batch: Tensor) -> Tensor:
        self.check_input(batch)
        tokens = self.frontend(batch).transpose(1, 2)  # (B, T', C)
        positions = self.positions
        if positions.shape[0] != tokens.shape[1]:  # a length other than the one given at construction
            positions = sinusoidal_positions(tokens.shape[1], tokens.shape[2]).to(tokens.device)
        tokens = tokens + positions.to(tokens.dtype)
        return self.out(self.dropout(self.attention(tokens).mean(dim=1)))


__all__ = ["CNNTransformerEncoder", "sinusoidal_positions"]
