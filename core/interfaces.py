"""The three component interfaces every plugin implements: `Augmentation`, `Encoder`, `Loss`.

Batches are `(B, L, T)` float tensors: B recordings, L leads, T samples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn


class Augmentation(ABC):
    """A random transform of a whole batch, drawn from an explicit `torch.Generator`.

    Implementations are vectorised over samples and leads, run on the batch's device, and give every
    sample its own random draw. The output has the input's shape unless the class says otherwise.
    """

    name: str = ""
    pairs_views: bool = False  # True where `views` forms the pair from one recording (see `views`)

    @abstractmethod
    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Return the augmented batch; `generator` must live on `batch.device`."""

    def views(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two views of `batch` for contrastive training: by default two independent draws of `self`.

        Augmentations whose two views are parts of one recording (CLOCS segments or lead groups) override
        this; `pairs_views` is then True so that `ecgcl.compose.Compose` knows where the pair is formed.
        """
        return self(batch, generator), self(batch, generator)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the output (and of each view) for an input `shape`; the input's shape by default."""
        return tuple(shape)

    def check_input(self, batch: Tensor, generator: torch.Generator) -> None:
        """Raise `EcgclError` unless `batch` is a floating `(B, L, T)` tensor and `generator` lives on its device."""
        from ecgcl.errors import EcgclError

        label = self.name or type(self).__name__
        if not isinstance(batch, Tensor) or batch.dim() != 3 or not batch.is_floating_point():
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise EcgclError(f"augmentation {label!r} expects a floating (batch, leads, samples) tensor, got {got}")
        if not isinstance(generator, torch.Generator):
            raise EcgclError(f"augmentation {label!r} needs a torch.Generator, got {type(generator).__name__}")
        gen_device, batch_device = torch.device(generator.device), batch.device
        if gen_device.type != batch_device.type or (
            gen_device.type != "cpu" and (gen_device.index or 0) != (batch_device.index or 0)
        ):
            raise EcgclError(
                f"augmentation {label!r}: the generator is on {gen_device} but the batch is on {batch_device}; "
                f"create it with torch.Generator(device=batch.device)"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Encoder(nn.Module):
    """Maps `(B, leads, samples)` to `(B, embed_dim)` for the lead count and length given at construction."""

    embed_dim: int

    def __init__(self, in_leads: int, length: int, embed_dim: int) -> None:
        super().__init__()
        if in_leads < 1 or length < 1 or embed_dim < 1:
            raise ValueError(f"{type(self).__name__}: in_leads, length and embed_dim must be positive")
        self.in_leads = in_leads
        self.length = length
        self.embed_dim = embed_dim

    def check_input(self, batch: Tensor) -> None:
        """Raise a clear error when a batch does not have the shape this encoder was built for."""
        if batch.dim() != 3 or batch.shape[1] != self.in_leads:
            raise ValueError(
                f"{type(self).__name__} expects (batch, {self.in_leads} leads, samples), got {tuple(batch.shape)}"
            )


class Loss(nn.Module, ABC):
    """A contrastive loss over the embeddings of two views; `patient_ids` lets a loss pair recordings."""

    @abstractmethod
    def forward(self, z1: Tensor, z2: Tensor, patient_ids: Tensor | None = None) -> Tensor:
        """Return a scalar loss for the (B, D) embeddings of two views of the same B recordings."""
