"""An encoder trained on some leads, used on a store with a subset of them (`--missing-leads zero|slice`).

Leads are matched by name (any spelling, any order). A lead the checkpoint never saw is an error. The
trained leads a store lacks are handled by one of two policies:
- `zero`: the missing leads are fed as zeros, so the encoder is unchanged. It is what an encoder pretrained
  with a lead-masking augmentation (one that declares `masks_leads = True`, as the built-in `lead_mask`
  does) has learnt to expect, and the default for such encoders.
- `slice`: the encoder's first layer is restricted to the present leads (the input-channel slices of the
  missing leads are dropped), so the encoder takes only the leads the store has; the default otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ecgcl.config import MISSING_LEADS
from ecgcl.errors import EcgclError
from ecgcl.registry import Registry


@dataclass(frozen=True)
class LeadPlan:
    """How a store's leads reach an encoder: `positions[i]` is where store lead i goes among `encoder_leads`."""

    store_leads: tuple[str, ...]
    trained_leads: tuple[str, ...]
    encoder_leads: tuple[str, ...]
    missing: tuple[str, ...]
    policy: str | None  # None when the store has every trained lead

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(self.encoder_leads.index(name) for name in self.store_leads)

    @property
    def identity(self) -> bool:
        """True when the store's leads are exactly the encoder's, in its order."""
        return self.store_leads == self.encoder_leads

    def adapter(self) -> nn.Module:
        """The parameter-free module that puts a store batch into the encoder's lead layout."""
        return nn.Identity() if self.identity else LeadAdapter(self.positions, len(self.encoder_leads))

    def describe(self) -> dict[str, Any]:
        """What checkpoints and results record about the mapping."""
        return {"missing_leads": self.policy, "missing_lead_names": list(self.missing),
                "encoder_leads": list(self.encoder_leads), "input_leads": list(self.store_leads)}


class LeadAdapter(nn.Module):
    """`(B, k, T) -> (B, n, T)`: the k store leads placed at their positions among n, zeros elsewhere."""

    def __init__(self, positions: Sequence[int], leads: int) -> None:
        super().__init__()
        self.leads = leads
        self.register_buffer("positions", torch.as_tensor(list(positions), dtype=torch.long), persistent=False)

    def forward(self, batch: Tensor) -> Tensor:
        out = batch.new_zeros(batch.shape[0], self.leads, batch.shape[2])
        return out.index_copy_(1, self.positions, batch)


def lead_masking_used(aug_spec: str | None, registry: Registry | None = None) -> bool:
    """Whether an `--aug` spec (as a checkpoint records it) has a part whose component declares `masks_leads`.

    The names are looked up in `registry` (default: the process-wide one) and nothing is built; a name no
    installed plugin registers counts as not masking.
    """
    from ecgcl.compose import spec_components

    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    return any(bool(getattr(c.factory, "masks_leads", False)) for c in spec_components(aug_spec, registry))


def default_policy(meta: dict[str, Any], registry: Registry | None = None) -> str:
    """`zero` for an encoder pretrained with lead masking (it has seen zeroed leads), else `slice`."""
    return "zero" if lead_masking_used(meta.get("pretrain_aug", meta.get("aug")), registry) else "slice"


def plan_leads(trained: Sequence[str], store_leads: Sequence[str], policy: str | None, *, source: str,
               store: Any) -> LeadPlan:
    """Map `store_leads` onto the `trained` leads by name; `policy` decides what missing leads become."""
    from ecgcl.data.leads import normalise_lead_name

    trained_names = tuple(normalise_lead_name(n) for n in trained)
    present = tuple(normalise_lead_name(n) for n in store_leads)
    unseen = [n for n in present if n not in trained_names]
    if unseen:
        raise EcgclError(f"store {store} has lead(s) {','.join(unseen)} that {source} was never trained on "
                         f"(it knows {','.join(trained_names)}); re-ingest the store with --leads "
                         f"{','.join(n for n in present if n in trained_names) or 'I'}")
    missing = tuple(n for n in trained_names if n not in present)
    if not missing:
        return LeadPlan(present, trained_names, trained_names, (), None)
    if policy not in MISSING_LEADS:
        raise EcgclError(f"--missing-leads must be one of {', '.join(MISSING_LEADS)}, got {policy!r}")
    encoder_leads = trained_names if policy == "zero" else tuple(n for n in trained_names if n in present)
    return LeadPlan(present, trained_names, encoder_leads, missing, policy)


def slice_state(state: dict[str, Tensor], target: nn.Module, plan: LeadPlan, *, source: str) -> dict[str, Tensor]:
    """`state` (of an encoder on `plan.trained_leads`) restricted to `plan.encoder_leads` for `target`.

    Every tensor whose shape differs from `target`'s only along one axis of size len(trained) -> len(kept)
    is indexed along that axis (the first layer's input channels); any other difference is an error.
    """
    kept = torch.as_tensor([plan.trained_leads.index(n) for n in plan.encoder_leads], dtype=torch.long)
    wanted = target.state_dict()
    sliced = {}
    for key, value in state.items():
        shape = wanted[key].shape if key in wanted else value.shape
        if shape == value.shape:
            sliced[key] = value
            continue
        axes = [d for d in range(value.dim()) if value.shape[d] != shape[d]] if value.dim() == len(shape) else []
        if len(axes) != 1 or value.shape[axes[0]] != len(plan.trained_leads) or shape[axes[0]] != len(kept):
            raise EcgclError(f"{source}: the encoder's {key} {tuple(value.shape)} cannot be restricted to the "
                             f"{len(kept)} present leads; use --missing-leads zero")
        sliced[key] = value.index_select(axes[0], kept)
    return sliced


def lead_plan_for(meta: dict[str, Any], store: Any, policy: str | None, *, source: str,
                  registry: Registry | None = None) -> LeadPlan:
    """Check a store against a checkpoint (same rate, records of at least its window: `check_store_matches`; a
    store of another rate or length is mapped first by `ecgcl.data.adapt.adapt_to_encoder`) and map its leads;
    `policy` None = the default (`default_policy`, looked up in `registry` only when the store lacks a trained
    lead)."""
    from ecgcl.data.leads import normalise_lead_name
    from ecgcl.engine.checkpoint import check_store_matches

    check_store_matches(meta, store, source=source)
    trained = meta.get("encoder_leads", meta["leads"])
    present = {normalise_lead_name(n) for n in store.leads}
    if not policy and any(normalise_lead_name(n) not in present for n in trained):
        policy = default_policy(meta, registry)
    return plan_leads(trained, store.leads, policy, source=source, store=store.path)


__all__ = ["MISSING_LEADS", "LeadAdapter", "LeadPlan", "default_policy", "lead_masking_used", "lead_plan_for",
           "plan_leads", "slice_state"]
