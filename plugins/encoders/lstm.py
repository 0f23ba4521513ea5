"""`cnn_lstm` and `cnn_attn_lstm`: the convolutional front end, a bidirectional LSTM, then pooling over time.

`cnn_lstm` averages the BiLSTM outputs over time; `cnn_attn_lstm` pools them with additive attention
(Bahdanau et al., ICLR 2015; the pooling form of Yang et al., NAACL 2016): a learnt score per time step,
softmax over time, weighted sum.

`sequence` gives the convolutional front end's per-step features, not the BiLSTM outputs: CPC's z_t are the
per-step encoder features (van den Oord et al. 2018; Mehari & Strodthoff 2022 put the context model on top of
them), and a bidirectional LSTM's output at t has already seen the steps after t, which would leak the future
that step objectives predict. Pretraining through `sequence` leaves the BiLSTM to fine-tuning.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.interfaces import Encoder
from ecgcl.plugins.encoders.frontend import FRONT_END, ConvFrontEnd, FrontEndOptions


class AttentionPooling(nn.Module):
    """Additive attention pooling: `(B, T, F) -> (B, F)` with weights softmax_t(v . tanh(W h_t))."""

    def __init__(self, features: int, attention_dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(features, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1, bias=False))

    def forward(self, sequence: Tensor) -> Tensor:
        weights = torch.softmax(self.score(sequence).float(), dim=1).to(sequence.dtype)  # (B, T, 1)
        return (weights * sequence).sum(dim=1)


class _ConvBiLSTMEncoder(Encoder):
    """Shared body of the two LSTM encoders; subclasses choose mean or attention pooling over time."""

    registered_name = ""
    attention_pooling = False

    def __init__(
        self,
        in_leads: int = 12,
        length: int = 1000,
        embed_dim: int = 128,
        width: int = FRONT_END.width,
        depth: int = FRONT_END.depth,
        kernel_size: int = FRONT_END.kernel_size,
        dropout: float = FRONT_END.dropout,
        hidden: int = 64,
        layers: int = 1,
        norm: str = FRONT_END.norm,
    ) -> None:
        """`width`/`depth`/`kernel_size`/`norm` shape the conv front end; `hidden` units per direction, `layers` LSTM layers."""
        front_end = FrontEndOptions(width, depth, kernel_size, dropout, norm)
        front_end.check(self.registered_name, hidden=hidden, layers=layers, embed_dim=embed_dim, in_leads=in_leads,
                        length=length)
        super().__init__(in_leads, length, embed_dim)
        self.frontend = ConvFrontEnd.from_options(in_leads, front_end)
        self.lstm = nn.LSTM(width, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.attention = AttentionPooling(2 * hidden, hidden) if self.attention_pooling else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, embed_dim)
        self.sequence_dim = width

    def sequence(self, batch: Tensor) -> Tensor:
        """`(B, L, T) -> (B, T', width)`: the front end's per-step features in time order (before the BiLSTM)."""
        self.check_input(batch)
        return self.frontend(batch).transpose(1, 2)

    def pool(self, sequence: Tensor) -> Tensor:
        """`(B, T', F) -> (B, F)`: learnt attention weights, or the mean over time."""
        return self.attention(sequence) if self.attention is not None else sequence.mean(dim=1)

    def forward(self, batch: Tensor) -> Tensor:
        self.check_input(batch)
        features = self.frontend(batch).transpose(1, 2)  # (B, T', C)
        sequence, _ = self.lstm(features)  # (B, T', 2 * hidden)
        return self.out(self.dropout(self.pool(sequence)))


class CNNLSTMEncoder(_ConvBiLSTMEncoder):
    """Residual CNN front end, bidirectional LSTM, mean over time."""

    registered_name = "cnn_lstm"


class CNNAttnLSTMEncoder(_ConvBiLSTMEncoder):
    """Residual CNN front end, bidirectional LSTM, additive attention pooling (size `hidden`) over its outputs."""

    registered_name = "cnn_attn_lstm"
    attention_pooling = True


__all__ = ["AttentionPooling", "CNNAttnLSTMEncoder", "CNNLSTMEncoder"]
