"""`cpc`: Contrastive Predictive Coding (van den Oord, Li & Vinyals, "Representation Learning with Contrastive
Predictive Coding", arXiv:1807.03748, 2018); for ECGs, Mehari & Strodthoff, "Self-supervised representation
learning from 12-lead ECG data", Computers in Biology and Medicine 141, 2022.

z_t = the encoder's per-step features (`encoder.sequence`, after `--aug` when given), c_t = a GRU over z_{<=t},
and for k = 1..`steps_ahead` a linear W_k predicts z_{t+k} from c_t. InfoNCE scores the prediction against the
true z_{t+k} (positive) and the z_{t+k} of the other records of the batch (negatives), averaged over records,
steps and offsets. The GRU and predictors are trained with the encoder and dropped after pretraining.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Augmentation, Objective


def info_nce(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean InfoNCE of `(B, T, D)` predictions: for (b, t) the positive is `targets[b, t]`, the negatives are
    `targets[b', t]` of the other records b' (logits are dot products)."""
    logits = torch.einsum("btd,ctd->tbc", predictions, targets)  # (T, B, B): step t, record b, candidate c
    steps, batch, _ = logits.shape
    labels = torch.arange(batch, device=logits.device).repeat(steps)
    return nn.functional.cross_entropy(logits.reshape(steps * batch, batch), labels)


class CPC(Objective):
    """GRU context over the encoder's steps, one linear predictor per future offset, InfoNCE with batch negatives."""

    needs = "sequence"

    def __init__(self, encoder: nn.Module, augmentation: Augmentation | None = None, steps_ahead: int = 4,
                 context_dim: int = 64) -> None:
        """`steps_ahead` future offsets predicted (>= 1, fewer than the encoder's steps); `context_dim` GRU units."""
        super().__init__()
        require_positive_ints("objective 'cpc'", steps_ahead=steps_ahead, context_dim=context_dim)
        if not hasattr(encoder, "sequence_dim"):
            raise EcgclError(f"objective 'cpc' needs an encoder with sequence steps; {type(encoder).__name__} has none")
        self.steps_ahead, self.augmentation = steps_ahead, augmentation
        dim = encoder.sequence_dim
        self.context = nn.GRU(dim, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_dim, dim, bias=False) for _ in range(steps_ahead))
        if hasattr(encoder, "in_leads") and hasattr(encoder, "length"):
            self.check_steps(encoder_steps(encoder, encoder.in_leads, encoder.length), encoder.length)

    def check_steps(self, steps: int, length: int) -> None:
        """One line naming `steps_ahead` when the encoder gives too few steps for it."""
        if self.steps_ahead >= steps:
            raise EcgclError(f"objective 'cpc': steps_ahead ({self.steps_ahead}) must be below the encoder's {steps} "
                             f"steps for {length} samples; lower steps_ahead or use a shallower encoder")

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """The batch the encoder sees: `--aug`'s perturbation of it, drawn from `generator` (itself without one)."""
        return {"input": batch if self.augmentation is None else self.augmentation(batch, generator)}

    def forward(self, encoder: nn.Module, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        """The mean InfoNCE of the batch over records, steps t and offsets k (float32, outside autocast)."""
        batch = self.draws(encoder, batch, generator)["input"]
        z = encoder.sequence(batch)  # (B, S, D)
        self.check_steps(z.shape[1], batch.shape[-1])
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            context, _ = self.context(z)  # (B, S, context_dim): c_t sees z_{<=t} only
            steps = z.shape[1]
            total = sum(info_nce(self.predictors[k - 1](context[:, : steps - k]), z[:, k:]) * (steps - k)
                        for k in range(1, self.steps_ahead + 1))
            return total / sum(steps - k for k in range(1, self.steps_ahead + 1))


@torch.no_grad()
def encoder_steps(encoder: nn.Module, in_leads: int, length: int) -> int:
    """How many steps `encoder.sequence` gives for `length` samples (one zero record, in eval mode)."""
    training = encoder.training
    parameter = next(encoder.parameters(), None)
    try:
        encoder.eval()
        dummy = torch.zeros(1, in_leads, length, device=parameter.device if parameter is not None else "cpu")
        return encoder.sequence(dummy).shape[1]
    finally:
        encoder.train(training)


__all__ = ["CPC", "encoder_steps", "info_nce"]
