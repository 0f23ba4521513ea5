"""`patch_transformer`: per-lead patches, a shared linear patch embedding plus learned lead and position
embeddings, a pre-norm transformer, mean over tokens, then a linear layer.

The token encoder of ST-MEM (Na et al., "Guiding masked representation learning to capture spatio-temporal
relationship of electrocardiogram", ICLR 2024) and ECG-JEPA (Weimann & Conrad, "Self-supervised pre-training
with joint-embedding predictive architecture boosts ECG classification performance", arXiv:2410.13867, 2024).
Each lead is cut into non-overlapping patches of `patch_size` samples (default: 0.5 s at the store's rate, i.e.
50 samples at 100 Hz), so a 10 s 12-lead record gives 20 patches per lead and 240 tokens at any rate. Tokens are
lead-major: token n is lead `n // steps`, time patch `n % steps`. When `length` is not a multiple of the patch,
the last `length % patch_size` samples are cropped. Sizes are for CPUs (width 64, depth 2, 4 heads; the
papers use ViTs 192 to 768 wide); layers are pre-norm. Besides `forward`, it exposes the token API of masked
modelling and JEPA (`tokens`, `encode_tokens`, `patches`, `token_dim`) and `sequence`: the patch embeddings (the
front end, before attention) averaged over leads, one step per time patch, as the CNN encoders' front-end steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Encoder


class PatchTransformerEncoder(Encoder):
    """Per-lead patch tokens -> transformer -> mean over tokens -> linear; exposes the token API."""

    def __init__(self, in_leads: int = 12, length: int = 1000, embed_dim: int = 128, fs: float = 100.0,
                 patch_size: int | None = None, width: int = 64, depth: int = 2, heads: int = 4, ff_mult: int = 2,
                 dropout: float = 0.1) -> None:
        """`patch_size` samples per patch (None: 0.5 s at `fs`); `width` token size (divisible by `heads`);
        `depth` transformer layers with feed-forward size `ff_mult * width`; `dropout` inside them."""
        patch = max(1, round(0.5 * float(fs))) if patch_size is None else patch_size
        require_positive_ints("encoder 'patch_transformer'", width=width, depth=depth, patch_size=patch, heads=heads,
                              ff_mult=ff_mult, embed_dim=embed_dim, in_leads=in_leads, length=length)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise EcgclError(f"encoder 'patch_transformer': dropout must be in [0, 1), got {dropout!r}")
        if width % heads:
            raise EcgclError(f"encoder 'patch_transformer': width ({width}) must be divisible by heads ({heads})")
        if patch > length:
            raise EcgclError(f"encoder 'patch_transformer': patch_size ({patch}) is longer than the input ({length} "
                             "samples); choose a smaller patch_size")
        super().__init__(in_leads, length, embed_dim)
        self.patch_size, self.steps, self.width = patch, length // patch, width
        self.patch_embed = nn.Linear(patch, width)
        self.lead_embed = nn.Parameter(torch.randn(in_leads, width) * 0.02)
        self.position_embed = nn.Parameter(torch.randn(self.steps, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=ff_mult * width, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, embed_dim)

    @property
    def token_dim(self) -> int:
        return self.width

    @property
    def sequence_dim(self) -> int:
        return self.width

    def patches(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, L * steps, patch_size) raw patches in token order (the remainder of T cropped)."""
        self.check_input(batch)
        b, leads, t = batch.shape
        steps = t // self.patch_size
        if not 1 <= steps <= self.steps:
            raise ValueError(f"patch_transformer was built for {self.length} samples ({self.steps} patches of "
                             f"patch_size {self.patch_size}), got {t}")
        return batch[..., : steps * self.patch_size].reshape(b, leads * steps, self.patch_size)

    def tokens(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, N, width) patch embeddings plus lead and position embeddings, N = L * steps."""
        patches = self.patches(batch)
        steps = patches.shape[1] // self.in_leads
        extra = self.lead_embed[:, None, :] + self.position_embed[None, :steps, :]  # (L, steps, width)
        return self.patch_embed(patches) + extra.reshape(-1, self.width).to(patches.dtype)

    def encode_tokens(self, tokens: Tensor, keep: Tensor) -> Tensor:
        """The transformer over the kept tokens only: (B, N, D) tokens and (B, K) indices -> (B, K, D)."""
        kept = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return self.transformer(kept)

    def sequence(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, steps, width): the tokens averaged over leads, in time order."""
        tokens = self.tokens(batch)
        return tokens.reshape(tokens.shape[0], self.in_leads, -1, self.width).mean(dim=1)

    def forward(self, batch: Tensor) -> Tensor:
        encoded = self.transformer(self.tokens(batch))
        return self.out(self.dropout(encoded.mean(dim=1)))


__all__ = ["PatchTransformerEncoder"]
