"""Token machinery shared by the token objectives (`masked`, `jepa`): where each token sits (lead, time patch),
random and hidden-token draws, and the light transformer decoder/predictor over all tokens (MAE's decoder,
He et al., CVPR 2022; ST-MEM's, Na et al., ICLR 2024; I-JEPA's predictor, Assran et al., CVPR 2023)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ecgcl.engine.pretraining import NEEDS
from ecgcl.errors import EcgclError


def check_ratio(objective: str, mask_ratio: float) -> float:
    """`mask_ratio` as a float, or a one-line EcgclError naming the objective, the option and the value."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)) or not 0.0 < mask_ratio < 1.0:
        raise EcgclError(f"objective {objective!r}: mask_ratio must be between 0 and 1 (exclusive), got {mask_ratio!r}")
    return float(mask_ratio)


def token_layout(encoder: nn.Module, objective: str) -> tuple[Tensor, Tensor, int]:
    """(lead, time patch) of each token and the samples per patch, read from `encoder.patches` of a probe whose
    samples are numbered, so any token order works."""
    if not all(hasattr(encoder, a) for a in NEEDS["tokens"]):
        raise EcgclError(f"objective {objective!r} needs a token encoder ({', '.join(NEEDS['tokens'])}), "
                         f"e.g. patch_transformer; {type(encoder).__name__} has none")
    leads, length = encoder.in_leads, encoder.length
    probe = torch.arange(leads * length, dtype=torch.float64).reshape(1, leads, length)
    with torch.no_grad():
        patches = encoder.patches(probe.to(next(encoder.parameters()).device))[0].cpu()
    first = patches[:, 0].long()
    if patches.shape[0] < 2:
        raise EcgclError(f"objective {objective!r}: the encoder gives {patches.shape[0]} token(s); at least 2 needed")
    return first // length, (first % length) // patches.shape[1], patches.shape[1]


def round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


class TokenDecoder(nn.Module):
    """Visible-token features + a learned mask token at hidden places -> `out_dim` per token.

    Every token gets its own lead and time-patch embedding (`lead`, `step`: (N,) per token), then `depth`
    pre-norm transformer layers of width `dim` run over all N tokens (MAE's decoder, ST-MEM's, JEPA's predictor).
    """

    def __init__(self, in_dim: int, dim: int, depth: int, heads: int, out_dim: int, lead: Tensor, step: Tensor) -> None:
        super().__init__()
        self.register_buffer("lead", lead.long(), persistent=False)
        self.register_buffer("step", step.long(), persistent=False)
        self.project = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.lead_embed = nn.Parameter(torch.randn(int(lead.max()) + 1, dim) * 0.02)
        self.step_embed = nn.Parameter(torch.randn(int(step.max()) + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, visible: Tensor, keep: Tensor) -> Tensor:
        """(B, K, in_dim) features of the tokens `keep` (B, K) -> (B, N, out_dim) for every token."""
        x = self.project(visible)
        full = self.mask_token.to(x.dtype).expand(x.shape[0], self.lead.shape[0], -1)
        full = full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x)
        return self.head(self.blocks(full + (self.lead_embed[self.lead] + self.step_embed[self.step]).to(x.dtype)))


def random_mask(batch_size: int, tokens: int, mask_ratio: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(keep (B, K) indices of visible tokens, mask (B, N) True where hidden): a random `mask_ratio` per record."""
    hidden = min(max(round_half_up(mask_ratio * tokens), 1), tokens - 1)
    order = torch.rand(batch_size, tokens, generator=generator, device=generator.device).argsort(dim=1)
    keep = order[:, : tokens - hidden]
    mask = torch.ones(batch_size, tokens, dtype=torch.bool, device=keep.device).scatter(1, keep, False)
    return keep, mask


__all__ = ["TokenDecoder", "check_ratio", "random_mask", "round_half_up", "token_layout"]
