"""The convolutional front end shared by every built-in encoder.

A strided stem and `depth` residual blocks (He et al., CVPR 2016), each halving the time axis, so a
10 s ECG at 500 Hz (5000 samples) becomes 157 steps and one at 100 Hz (1000 samples) 32 steps before any
recurrent or attention layer sees it: that keeps the LSTM and self-attention encoders fast on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints

NORMS = ("batch", "group", "none")


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation after each convolution.

    `batch`: BatchNorm (Ioffe & Szegedy, 2015), the default; under multi-GPU DDP it becomes SyncBatchNorm.
    `group`: GroupNorm (Wu & He, ECCV 2018) with gcd(channels, 8) groups: per-sample statistics, so results
    do not depend on how a batch is split over processes (what CPU multi-process training needs, since
    SyncBatchNorm is GPU-only). `none`: no normalisation.
    """
    if norm == "batch":
        return nn.BatchNorm1d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return nn.Identity()


@dataclass(frozen=True)
class FrontEndOptions:
    """The front end's options: `width` conv channels, `depth` residual blocks (each halves time), `kernel_size`,
    `dropout` inside the blocks and `norm` after each convolution (see `make_norm`).

    Every encoder that uses the front end takes these as keyword parameters of its own (the registry reads
    factory signatures) with the defaults of `FRONT_END`, so a default is changed in one place.
    """

    width: int
    depth: int
    kernel_size: int
    dropout: float
    norm: str

    def check(self, encoder: str, **positive: int) -> None:
        """Raise `EcgclError` naming `encoder` and the option when a size, the dropout or the norm is out of range.

        `positive` are the encoder's own sizes (embed_dim, in_leads, ...), checked in the order given, so one
        call reports the first bad option of the whole encoder.
        """
        if self.norm not in NORMS:
            raise EcgclError(f"encoder {encoder!r}: norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        require_positive_ints(f"encoder {encoder!r}", width=self.width, kernel_size=self.kernel_size, **positive)
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 0:
            raise EcgclError(f"encoder {encoder!r}: depth must be an integer >= 0, got {self.depth!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise EcgclError(f"encoder {encoder!r}: dropout must be in [0, 1), got {self.dropout!r}")


# The defaults of every built-in encoder's front-end options: their one home.
FRONT_END = FrontEndOptions(width=16, depth=3, kernel_size=7, dropout=0.1, norm="batch")


def check_options(encoder: str, *, width: int, depth: int, kernel_size: int, dropout: float,
                  norm: str = FRONT_END.norm, **positive: int) -> None:
    """`FrontEndOptions(...).check(encoder, **positive)` for callers that hold the options one by one."""
    FrontEndOptions(width, depth, kernel_size, dropout, norm).check(encoder, **positive)


def conv_output_length(length: int, kernel_size: int, stride: int) -> int:
    """Output length of a `Conv1d` with padding `kernel_size // 2` (PyTorch's formula)."""
    return (length + 2 * (kernel_size // 2) - kernel_size) // stride + 1


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-dropout-conv-norm plus a (strided 1x1) shortcut, then ReLU; halves the time axis."""

    def __init__(self, channels: int, kernel_size: int, dropout: float, stride: int = 2,
                 norm: str = FRONT_END.norm) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, stride=stride, padding=pad, bias=False),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, kernel_size, padding=pad, bias=False),
            make_norm(norm, channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv1d(channels, channels, 1, stride=stride, bias=False),
            make_norm(norm, channels),
        )
        self.kernel_size, self.stride = kernel_size, stride
        self.act = nn.ReLU(inplace=True)

    def output_length(self, length: int) -> int:
        return conv_output_length(conv_output_length(length, self.kernel_size, self.stride), self.kernel_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ConvFrontEnd(nn.Module):
    """`(B, leads, T) -> (B, width, T')` with T' about T / 2**(depth + 1)."""

    def __init__(self, in_leads: int, width: int, depth: int, kernel_size: int, dropout: float,
                 norm: str = FRONT_END.norm) -> None:
        super().__init__()
        self.in_leads, self.width, self.kernel_size = in_leads, width, kernel_size
        self.stem = nn.Sequential(
            nn.Conv1d(in_leads, width, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
            make_norm(norm, width),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(width, kernel_size, dropout, norm=norm) for _ in range(depth)))

    @classmethod
    def from_options(cls, in_leads: int, options: FrontEndOptions) -> ConvFrontEnd:
        """The front end for `in_leads` input leads with checked `options` (see `FrontEndOptions.check`)."""
        return cls(in_leads, options.width, options.depth, options.kernel_size, options.dropout, norm=options.norm)

    @property
    def out_channels(self) -> int:
        return self.width

    def output_length(self, length: int) -> int:
        """How many time steps come out for an input of `length` samples."""
        length = conv_output_length(length, self.kernel_size, 2)
        for block in self.blocks:
            length = block.output_length(length)
        return length

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.stem(x))


__all__ = ["FRONT_END", "NORMS", "ConvFrontEnd", "FrontEndOptions", "ResidualBlock", "check_options",
           "conv_output_length", "make_norm"]
