"""Building encoders (from the registry, or as a checkpoint's metadata describes) and the classifier that wraps
them for fine-tuning and evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ecgcl.engine.inputs import represent, represented_length
from ecgcl.engine.heads import ClassifierHead
from ecgcl.errors import EcgclError


def build_encoder(registry, name: str, *, in_leads: int, window: int, representation: str, embed_dim: int,
                  encoder_args: dict[str, Any], context=None) -> nn.Module:
    """An encoder from the registry for `window` time samples in the given input representation.

    The runtime values its factory names (`in_leads`, `length`, `embed_dim`, and from `context`: `fs`,
    `leads`, `device`) are passed by name; `encoder_args` are the user's options only.
    """
    from ecgcl.context import RuntimeContext, create_component

    context = (context or RuntimeContext()).replace(in_leads=in_leads, embed_dim=embed_dim,
                                                    length=represented_length(window, representation))
    return create_component(registry, "encoder", name, dict(encoder_args), context, where="--encoder-arg {key}")


def encoder_from_meta(meta: dict[str, Any], registry, *, source: str, leads: list[str] | None = None) -> nn.Module:
    """A fresh encoder built as a checkpoint's `meta` describes (name, arguments, leads, window, input).

    It takes the checkpoint's encoder leads (`encoder_leads`, which differ from the store's after
    `--missing-leads zero`), or `leads` when given. The runtime values its factory names, such as `fs`, are
    those of the data it was trained on.
    """
    from ecgcl.context import RuntimeContext

    if ("encoder", meta["encoder"]) not in registry:
        raise EcgclError(f"{source} needs encoder {meta['encoder']!r}, which no installed plugin provides")
    leads = leads if leads is not None else meta.get("encoder_leads")
    in_leads = len(leads) if leads is not None else meta["num_leads"]
    names = leads if leads is not None else meta.get("leads")
    context = RuntimeContext(fs=float(meta["fs"]), leads=tuple(names) if names else None, device="cpu")
    return build_encoder(registry, meta["encoder"], in_leads=in_leads, window=meta["window"],
                         representation=meta["representation"], embed_dim=meta["embed_dim"],
                         encoder_args=meta["encoder_args"], context=context)


def embed(encoder: nn.Module, batch: Tensor, *, window: int, representation: str) -> Tensor:
    """(B, L, T) recordings -> (B, D) embeddings.

    When the encoder was pretrained on shorter views (e.g. CLOCS segments of `window` < T samples), each
    recording is cut into T // window consecutive windows whose embeddings are averaged, as CLOCS does at
    evaluation time.
    """
    b, leads, t = batch.shape
    if t != window:
        pieces = t // window
        batch = batch[..., : pieces * window].reshape(b, leads, pieces, window).transpose(1, 2)
        batch = batch.reshape(b * pieces, leads, window)
        return encoder(represent(batch, representation)).reshape(b, pieces, -1).mean(dim=1)
    return encoder(represent(batch, representation))


class Classifier(nn.Module):
    """Encoder + linear classifier head: (B, L, T) recordings -> (B, outputs) logits.

    `softmax=True` for multi-class tasks (one class per record, trained with cross-entropy); otherwise each
    output is a sigmoid (binary and multi-label tasks, trained with binary cross-entropy). `lead_adapter`
    (parameter-free, see `ecgcl.engine.lead_mapping`) puts the store's leads into the encoder's lead layout
    first, e.g. zero-filling the leads a 1-lead store lacks.
    """

    def __init__(self, encoder: nn.Module, num_outputs: int, *, window: int, representation: str,
                 dropout: float = 0.0, softmax: bool = False, lead_adapter: nn.Module | None = None) -> None:
        super().__init__()
        self.softmax = softmax
        self.lead_adapter = lead_adapter if lead_adapter is not None else nn.Identity()
        self.encoder = encoder
        self.head = ClassifierHead(encoder.embed_dim, num_outputs, dropout=dropout)
        self.window = window
        self.representation = representation

    def features(self, batch: Tensor) -> Tensor:
        return embed(self.encoder, self.lead_adapter(batch), window=self.window, representation=self.representation)

    def forward(self, batch: Tensor) -> Tensor:
        return self.head(self.features(batch))


@torch.no_grad()
def probabilities(logits: Tensor, softmax: bool = False) -> Tensor:
    """Softmax over the outputs (multi-class), else a sigmoid per output; binary tasks (one output) give (B,)."""
    if softmax:
        return torch.softmax(logits.float(), dim=1)
    probs = torch.sigmoid(logits)
    return probs[:, 0] if probs.shape[1] == 1 else probs
