"""`masked`: masked ECG signal modelling as in ST-MEM (Na et al., "Guiding masked representation learning to
capture spatio-temporal relationship of electrocardiogram", ICLR 2024), after MAE (He et al., CVPR 2022).

A random `mask_ratio` of each record's tokens (per-lead patches of a token encoder such as `patch_transformer`)
is hidden, drawn from the batch's generator; the encoder sees the visible tokens only; a light decoder (a learned
mask token, its own lead and time-patch embeddings, `decoder_depth` pre-norm transformer layers of width
`decoder_dim`) reconstructs every patch, and the loss is the mean squared error over the masked patches only,
against the raw patches or, with `norm_target`, each patch normalised to zero mean and unit variance (MAE).
`--aug` (default none) perturbs the batch before masking; the target is the perturbed signal. The decoder is
dropped after pretraining. `TokenDecoder`, `token_layout` and `check_ratio` serve `jepa` too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ecgcl.engine.pretraining import NEEDS
from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Objective


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


def masked_patch_loss(predictions: Tensor, patches: Tensor, mask: Tensor, norm_target: bool = False) -> Tensor:
    """Mean squared error of (B, N, S) predictions over the patches where `mask` (B, N) is True, only."""
    target = patches
    if norm_target:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = (predictions - target).square().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


class MaskedModelling(Objective):
    """ST-MEM / MAE masked signal modelling on a token encoder; loss: MSE on the masked patches."""

    needs = "tokens"

    def __init__(self, encoder: nn.Module, augmentation=None, mask_ratio: float = 0.75, decoder_dim: int = 64,
                 decoder_depth: int = 1, decoder_heads: int = 4, norm_target: bool = False) -> None:
        super().__init__()
        self.mask_ratio, self.norm_target = check_ratio("masked", mask_ratio), norm_target
        self.augmentation = augmentation
        require_positive_ints("objective 'masked'", decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                              decoder_heads=decoder_heads)
        if decoder_dim % decoder_heads:
            raise EcgclError(f"objective 'masked': decoder_dim ({decoder_dim}) must be divisible by decoder_heads "
                             f"({decoder_heads})")
        lead, step, patch = token_layout(encoder, "masked")
        self.decoder = TokenDecoder(encoder.token_dim, decoder_dim, decoder_depth, decoder_heads, patch, lead, step)

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """`input` (the batch after `--aug`), its `tokens`, and the random `keep` / `mask` drawn from `generator`."""
        if self.augmentation is not None:
            batch = self.augmentation(batch, generator)
        tokens = encoder.tokens(batch)
        if tokens.shape[1] != self.decoder.lead.shape[0]:
            raise EcgclError(f"objective 'masked': the encoder gives {tokens.shape[1]} tokens for a batch of shape "
                             f"{tuple(batch.shape)}, not the {self.decoder.lead.shape[0]} it was built for")
        keep, mask = random_mask(tokens.shape[0], tokens.shape[1], self.mask_ratio, generator)
        return {"input": batch, "tokens": tokens, "keep": keep, "mask": mask}

    def reconstruct(self, encoder, drawn: dict) -> Tensor:
        """The decoder's (B, N, patch_samples) prediction of every patch from the visible tokens of `drawn`."""
        return self.decoder(encoder.encode_tokens(drawn["tokens"], drawn["keep"]), drawn["keep"])

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        drawn = self.draws(encoder, batch, generator)
        patches, predictions = encoder.patches(drawn["input"]), self.reconstruct(encoder, drawn)
        with torch.autocast(device_type=batch.device.type, enabled=False):
            return masked_patch_loss(predictions.float(), patches.float(), drawn["mask"], self.norm_target)

__all__ = ["MaskedModelling", "TokenDecoder", "check_ratio", "masked_patch_loss", "random_mask", "token_layout"]
