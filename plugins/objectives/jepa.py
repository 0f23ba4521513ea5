"""`jepa`: joint-embedding predictive architecture for ECGs, as ECG-JEPA (Weimann & Conrad, "Self-supervised
pre-training with joint-embedding predictive architecture boosts ECG classification performance",
arXiv:2410.13867, 2024), after I-JEPA (Assran et al., CVPR 2023).

Each record hides `blocks` contiguous blocks of time patches across all leads (`mask_ratio` of the time patches
in all, the same count for every record, positions drawn from the batch's generator). The context encoder (the
encoder being pretrained) sees the visible tokens only; a predictor (`TokenDecoder`: mask tokens with lead and
time-patch embeddings, `predictor_depth` transformer layers of width `predictor_dim`) predicts, at every hidden
token, the features that the target encoder gives when it sees all tokens (layer-normed with `target_norm`, as
I-JEPA). Loss in latent space: `distance` smooth_l1 (I-JEPA's code) or mse. The target is an EMA copy of the
encoder (no gradients, eval mode), part of this objective's state (checkpointed); after optimizer step k of K its
momentum is 1 - (1 - momentum) (cos(pi k / (K - 1)) + 1) / 2: `momentum` (0.996) at the first step, 1 at the last.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Objective
from ecgcl.plugins.objectives.ema import check_momentum, ema_momentum, ema_update
from ecgcl.plugins.objectives.tokens import TokenDecoder, check_ratio, round_half_up, token_layout

DISTANCES = {"smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}


def block_mask(batch_size: int, steps: int, lengths: Tensor, generator: torch.Generator) -> Tensor:
    """(B, steps) True inside `len(lengths)` non-touching blocks of the given lengths, at random places.

    The unmasked steps not needed as separators are gaps; the blocks are placed among the gaps uniformly by
    ranking random numbers (one argsort per batch): block i starts at its slot plus the blocks before it.
    """
    blocks = lengths.shape[0]
    slots = steps - int(lengths.sum()) - (blocks - 1) + blocks
    noise = torch.rand(batch_size, slots, generator=generator, device=generator.device)
    chosen = noise.argsort(dim=1)[:, :blocks].sort(dim=1).values
    lengths = lengths.to(chosen.device)
    starts = chosen + (lengths.cumsum(0) - lengths)
    t = torch.arange(steps, device=chosen.device)
    inside = (t >= starts[..., None]) & (t < (starts + lengths)[..., None])  # (B, blocks, steps)
    return inside.any(dim=1)


class JEPA(Objective):
    """ECG-JEPA: predict an EMA target encoder's features of hidden time blocks from the visible tokens."""

    needs = "tokens"

    def __init__(self, encoder: nn.Module, augmentation=None, mask_ratio: float = 0.5, blocks: int = 2,
                 predictor_dim: int = 64, predictor_depth: int = 1, predictor_heads: int = 4,
                 distance: str = "smooth_l1", target_norm: bool = True, momentum: float = 0.996) -> None:
        super().__init__()
        ratio = check_ratio("jepa", mask_ratio)
        require_positive_ints("objective 'jepa'", blocks=blocks, predictor_dim=predictor_dim,
                              predictor_depth=predictor_depth, predictor_heads=predictor_heads)
        if predictor_dim % predictor_heads:
            raise EcgclError(f"objective 'jepa': predictor_dim ({predictor_dim}) must be divisible by predictor_heads "
                             f"({predictor_heads})")
        if distance not in DISTANCES:
            raise EcgclError(f"objective 'jepa': distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
        lead, step, _ = token_layout(encoder, "jepa")
        steps = int(step.max()) + 1
        hidden = max(round_half_up(ratio * steps), blocks)
        if steps - hidden < max(blocks - 1, 1):
            raise EcgclError(f"objective 'jepa': {steps} time patches cannot hold {blocks} separate block(s) hiding "
                             f"mask_ratio {mask_ratio} and leave context; lower mask_ratio or blocks")
        lengths = torch.full((blocks,), hidden // blocks) + (torch.arange(blocks) < hidden % blocks)  # sum: hidden
        self.register_buffer("lengths", lengths, persistent=False)
        self.register_buffer("token_step", step, persistent=False)
        self.steps, self.distance, self.target_norm = steps, distance, target_norm
        self.momentum = check_momentum(momentum)
        self.augmentation = augmentation
        self.predictor = TokenDecoder(encoder.token_dim, predictor_dim, predictor_depth, predictor_heads,
                                      encoder.token_dim, lead, step)
        self.target = copy.deepcopy(encoder).requires_grad_(False).eval()
        self._online = (encoder,)  # a plain reference: the encoder belongs to the runtime, not to this state

    def train(self, mode: bool = True) -> JEPA:
        super().train(mode)
        self.target.eval()  # deterministic targets: no dropout in the EMA encoder
        return self

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """`input` (after `--aug`), its `tokens`, the hidden blocks `mask` (B, N) drawn from `generator`, and
        `order` (visible tokens first, each group in token order) whose first part is `keep`."""
        if self.augmentation is not None:
            batch = self.augmentation(batch, generator)
        tokens = encoder.tokens(batch)
        if tokens.shape[1] != self.token_step.shape[0]:
            raise EcgclError(f"objective 'jepa': the encoder gives {tokens.shape[1]} tokens for a batch of shape "
                             f"{tuple(batch.shape)}, not the {self.token_step.shape[0]} it was built for")
        mask = block_mask(tokens.shape[0], self.steps, self.lengths, generator)[:, self.token_step]  # True: hidden
        order = mask.to(torch.uint8).argsort(dim=1, stable=True)
        keep = order[:, : tokens.shape[1] - int(mask[0].sum())]
        return {"input": batch, "tokens": tokens, "keep": keep, "mask": mask, "order": order}

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        self._online = (getattr(encoder, "module", encoder),)
        drawn = self.draws(encoder, batch, generator)
        batch, tokens, keep, order = drawn["input"], drawn["tokens"], drawn["keep"], drawn["order"]
        b, n, d = tokens.shape
        hidden = order[:, keep.shape[1]:].unsqueeze(-1).expand(-1, -1, d)
        predictions = self.predictor(encoder.encode_tokens(tokens, keep), keep).gather(1, hidden)
        with torch.no_grad():
            everything = torch.arange(n, device=tokens.device).expand(b, n)
            targets = self.target.encode_tokens(self.target.tokens(batch), everything)
            targets = (F.layer_norm(targets.float(), (d,)) if self.target_norm else targets).gather(1, hidden)
        with torch.autocast(device_type=batch.device.type, enabled=False):
            return DISTANCES[self.distance](predictions.float(), targets.float())

    def after_step(self, step: int, total_steps: int) -> None:
        """target <- m * target + (1 - m) * online for every parameter (buffers copied), m = `ema_momentum`."""
        ema_update(self._online[0], self.target, ema_momentum(step, total_steps, self.momentum), copy_buffers=True)


__all__ = ["JEPA", "block_mask"]
