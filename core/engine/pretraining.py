"""What an objective sees of the encoder during pretraining, and the one module DDP and torch.compile wrap.

`PretrainEncoder` gives an objective the encoder's embeddings as fine-tuning will use them (input
representation, windowed averaging: `ecgcl.engine.model.embed`), and its steps or tokens where the encoder has
them, with a one-line error naming both when it has not. `PretrainStep` holds encoder and objective as one
`nn.Module` whose forward returns the batch's loss, so DistributedDataParallel sees every trainable parameter.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.engine.inputs import represent
from ecgcl.engine.model import embed
from ecgcl.errors import EcgclError

NEEDS = {"sequence": ("sequence",), "tokens": ("tokens", "encode_tokens", "patches")}  # methods an encoder has


class PretrainEncoder(nn.Module):
    """The encoder as objectives use it: `embed`, `sequence`, `tokens`, `encode_tokens`, `patches`."""

    def __init__(self, encoder: nn.Module, *, window: int, representation: str) -> None:
        super().__init__()
        self.module = encoder
        self.window, self.representation = window, representation

    @property
    def embed_dim(self) -> int:
        return self.module.embed_dim

    def embed(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, embed_dim), exactly as fine-tuning and `ecgcl embed` compute it."""
        return embed(self.module, batch, window=self.window, representation=self.representation)

    def sequence(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, steps, sequence_dim) per-step features of the encoder's input representation."""
        return self.module.sequence(represent(batch, self.representation))

    def tokens(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, N, token_dim) patch tokens with their lead and position embeddings."""
        return self.module.tokens(represent(batch, self.representation))

    def encode_tokens(self, tokens: Tensor, keep: Tensor) -> Tensor:
        """The encoder's transformer over the kept tokens only (`keep`: (B, K) indices)."""
        return self.module.encode_tokens(tokens, keep)

    def patches(self, batch: Tensor) -> Tensor:
        """(B, L, T) -> (B, N, patch_samples): the raw patches in token order (reconstruction targets)."""
        return self.module.patches(represent(batch, self.representation))


def check_objective_fits(objective_name: str, needs: str | None, encoder_name: str, encoder: nn.Module,
                         fitting: list[str]) -> None:
    """One line naming both when an objective needs steps or tokens the encoder does not expose; `fitting`
    lists the registered encoders that do."""
    if needs is None:
        return
    missing = [a for a in NEEDS[needs] if not hasattr(encoder, a)]
    if missing:
        raise EcgclError(f"objective {objective_name!r} needs an encoder with {needs} ({', '.join(NEEDS[needs])}); "
                         f"encoder {encoder_name!r} has none. Encoders that fit: {', '.join(fitting) or 'none installed'}")


class PretrainStep(nn.Module):
    """Encoder + objective: `(batch, patient_ids, generator) -> loss`; the module DDP and torch.compile wrap."""

    def __init__(self, encoder: nn.Module, objective: nn.Module, *, window: int, representation: str) -> None:
        super().__init__()
        self.encoder = PretrainEncoder(encoder, window=window, representation=representation)
        self.objective = objective

    def forward(self, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        return self.objective(self.encoder, batch, patient_ids, generator)
