"""Lead masking is a declared attribute (`masks_leads`), not a plugin name: a third-party augmentation that
declares it gives its encoders the `--missing-leads zero` default, as the built-in `lead_mask` does."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

import ecgcl
from ecgcl.compose import spec_components
from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.engine.lead_mapping import default_policy, lead_masking_used, lead_plan_for
from ecgcl.interfaces import Augmentation
from ecgcl.manager import create_plugin_manager
from ecgcl.plugins.augmentations import LeadMask
from ecgcl.registry import Source


class DropPrecordial(Augmentation):
    """Zeroes V1-V6 of every sample: a lead-masking augmentation under a name core has never heard of."""

    masks_leads = True

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return torch.cat([batch[:, :6], torch.zeros_like(batch[:, 6:])], dim=1)


class Unbuildable(Augmentation):
    """Declares lead masking but cannot be built: the declaration is read without building it."""

    masks_leads = True

    def __init__(self) -> None:
        raise AssertionError("the default policy must not build augmentations")

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:  # pragma: no cover
        return batch


class Flip(Augmentation):
    """Negates the signal: leaves every lead in place, declares nothing."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return -batch


class LeadPlugin:
    @ecgcl.hookimpl
    def register_augmentations(self, registry):
        registry.add("drop_precordial", DropPrecordial, kind="augmentation")
        registry.add("unbuildable", Unbuildable, kind="augmentation")
        registry.add("flip", Flip, kind="augmentation")


@pytest.fixture(scope="module")
def registry():
    manager = create_plugin_manager(entry_points=False)
    manager.register(LeadPlugin(), "leadplug", Source("ecgcl-lead-plugins", "1.0", "leadplug"))
    return manager.registry


def test_the_interface_default_is_false_and_lead_mask_declares_it(registry):
    assert Augmentation.masks_leads is False and LeadMask.masks_leads is True
    declared = [c.name for c in registry.components("augmentation") if getattr(c.factory, "masks_leads", False)]
    assert sorted(declared) == ["drop_precordial", "lead_mask", "unbuildable"]


@pytest.mark.parametrize(("aug", "policy"), [
    ("drop_precordial", "zero"), ("noise+drop_precordial", "zero"), ("unbuildable", "zero"),
    ("lead_mask:keep=3+noise", "zero"), ("flip:p=0.2", "slice"), ("flip+noise", "slice"), ("noise", "slice"),
    ("none", "slice"), ("", "slice"), ("not_installed_any_more", "slice"),
])
def test_the_default_policy_follows_the_declaration_not_the_name(registry, aug, policy):
    assert default_policy({"aug": aug}, registry) == policy
    assert lead_masking_used(aug, registry) is (policy == "zero")


def test_spec_components_reads_names_in_order_without_building(registry):
    assert [c.name for c in spec_components("flip:p=0.1+unbuildable+gone+noise", registry)] == \
        ["flip", "unbuildable", "noise"]
    assert spec_components(None, registry) == () and spec_components(" none ", registry) == ()


def test_a_store_with_fewer_leads_gets_the_declared_default(registry):
    meta = {"leads": list(STANDARD_LEADS), "num_leads": 12, "length": 200, "fs": 100.0}
    limb = SimpleNamespace(signals=np.zeros((1, 6, 200), np.float32), fs=100.0, leads=list(STANDARD_LEADS[:6]),
                           path="limb")
    masked = lead_plan_for({**meta, "aug": "drop_precordial"}, limb, None, source="ckpt", registry=registry)
    assert masked.policy == "zero" and masked.encoder_leads == STANDARD_LEADS
    plain = lead_plan_for({**meta, "aug": "flip"}, limb, None, source="ckpt", registry=registry)
    assert plain.policy == "slice" and plain.encoder_leads == STANDARD_LEADS[:6]
    chosen = lead_plan_for({**meta, "aug": "drop_precordial"}, limb, "slice", source="ckpt", registry=registry)
    assert chosen.policy == "slice"
