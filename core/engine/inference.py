"""A trained model run over records without training: class probabilities and encoder embeddings.

Shared by the training loops (validation), `evaluate`, `embed`, robustness and the notebook encoder
(`ecgcl.engine.pretrained`), so each of them scores and embeds batches the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from ecgcl.data.store import ECGStore
from ecgcl.engine.guards import check_batch_size, check_finite_probabilities
from ecgcl.engine.loading import batch_loader
from ecgcl.engine.model import Classifier, embed, probabilities


@torch.no_grad()
def predict(model: Classifier, store: ECGStore, rows: np.ndarray, *, batch_size: int,
            device: torch.device, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Probabilities for the records `rows` ((N,) for binary tasks, (N, C) for multi-class and multi-label ones);
    EcgclError when the model gives NaN/inf for any record, which no metric may score. `transform` (e.g. a
    robustness perturbation) is applied to each batch on `device` before the model."""
    check_batch_size(batch_size, minimum=1, why="predictions are made in batches of at least one record")
    return check_finite_probabilities(predict_probabilities(model, store, rows, batch_size, device, transform),
                                      what="the model")


@torch.no_grad()
def predict_probabilities(model: Classifier, store: ECGStore, rows: np.ndarray, batch_size: int,
                          device: torch.device,
                          transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """`predict` without the finiteness check (validation during training reports non-finite values itself)."""
    model.to(device).eval()
    outputs = []
    for signals, _, _ in batch_loader(store, rows, None, batch_size):
        signals = signals.to(device)
        outputs.append(probabilities(model(transform(signals) if transform else signals), model.softmax).cpu())
    return torch.cat(outputs).numpy().astype(np.float64)


def embed_batches(encoder: nn.Module, batches: Iterable[torch.Tensor], count: int, *, window: int,
                  representation: str, device: torch.device | str,
                  lead_adapter: nn.Module | None = None) -> np.ndarray:
    """(count, embed_dim) float32 embeddings of `batches` ((B, leads, samples) tensors holding `count` recordings
    in all), in order, encoder in eval mode: the lead adapter puts each batch into the encoder's lead layout,
    then `ecgcl.engine.model.embed`. Written into one array, so no tensor is kept per batch."""
    encoder.to(device).eval()
    adapter = lead_adapter.to(device) if lead_adapter is not None else None
    out = np.empty((count, encoder.embed_dim), dtype=np.float32)
    done = 0
    with torch.no_grad():
        for signals in batches:
            batch = signals.to(device)
            batch = adapter(batch) if adapter is not None else batch
            vectors = embed(encoder, batch, window=window, representation=representation).float().cpu().numpy()
            out[done:done + len(vectors)] = vectors
            done += len(vectors)
    if done != count:
        raise ValueError(f"embed_batches was promised {count} recordings and got {done}")
    return out


def compute_embeddings(encoder: nn.Module, store: ECGStore, rows: np.ndarray, *, window: int, representation: str,
                       batch_size: int, device: torch.device | str,
                       lead_adapter: nn.Module | None = None) -> np.ndarray:
    """(len(rows), embed_dim) float32 embeddings of the store's `rows`, in that order (see `embed_batches`).

    `lead_adapter` (see `ecgcl.engine.lead_mapping`) puts the store's leads into the encoder's layout first.
    """
    batches = (signals for signals, _, _ in batch_loader(store, rows, None, batch_size))
    return embed_batches(encoder, batches, len(rows), window=window, representation=representation, device=device,
                         lead_adapter=lead_adapter)
