"""`masked`: masked ECG signal modelling as in ST-MEM (Na et al., "Guiding masked representation learning to
capture spatio-temporal relationship of electrocardiogram", ICLR 2024), after MAE (He et al., CVPR 2022).

A random `mask_ratio` of each record's tokens (per-lead patches of a token encoder such as `patch_transformer`)
is hidden, drawn from the batch's generator; the encoder sees the visible tokens only; a light decoder (a learned
mask token, its own lead and time-patch embeddings, `decoder_depth` pre-norm transformer layers of width
`decoder_dim`) reconstructs every patch, and the loss is the mean squared error over the masked patches only,
against the raw patches or, with `norm_target`, each patch normalised to zero mean and unit variance (MAE).
`--aug` (default none) perturbs the batch before masking; the target is the perturbed signal. The decoder is
dropped after pretraining (the token machinery it shares with `jepa` is in `tokens.py`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Objective
from ecgcl.plugins.objectives.tokens import TokenDecoder, check_ratio, random_mask, token_layout


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


__all__ = ["MaskedModelling", "masked_patch_loss"]
