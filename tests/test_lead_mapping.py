"""Mapping a store's leads onto a checkpoint's by name: the plan, zero-filling, and slicing the first layer."""

from __future__ import annotations

import pytest
import torch

from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.engine.lead_mapping import LeadAdapter, default_policy, lead_masking_used, plan_leads, slice_state
from ecgcl.engine.model import build_encoder
from ecgcl.errors import EcgclError
from ecgcl.manager import create_plugin_manager

REGISTRY = create_plugin_manager(entry_points=False).registry


def encoder(leads: int, name: str = "cnn"):
    torch.manual_seed(0)
    return build_encoder(REGISTRY, name, in_leads=leads, window=400, representation="time", embed_dim=8,
                         encoder_args={} if name != "cnn" else {"width": 8, "depth": 1}).eval()


def test_a_store_with_every_lead_in_another_spelling_and_order_is_reordered_by_name():
    store = ["v6", "avr", *STANDARD_LEADS[:3], *STANDARD_LEADS[4:11]]
    plan = plan_leads(STANDARD_LEADS, store, "slice", source="ckpt", store="s")
    assert plan.policy is None and plan.missing == () and plan.encoder_leads == STANDARD_LEADS
    batch = torch.arange(12.0)[None, :, None].expand(2, 12, 5)
    out = plan.adapter()(batch)
    assert out[0, STANDARD_LEADS.index("V6"), 0] == 0 and out[0, STANDARD_LEADS.index("aVR"), 0] == 1


def test_zero_places_the_present_leads_and_fills_the_rest_with_zeros():
    plan = plan_leads(STANDARD_LEADS, ["II", "I"], "zero", source="ckpt", store="s")
    assert plan.missing == STANDARD_LEADS[2:] and plan.encoder_leads == STANDARD_LEADS
    adapter = plan.adapter()
    assert isinstance(adapter, LeadAdapter) and not adapter.state_dict()  # nothing new in checkpoints
    out = adapter(torch.tensor([[[2.0], [1.0]]]))
    assert out.shape == (1, 12, 1) and out[0, :2, 0].tolist() == [1.0, 2.0] and not out[0, 2:].any()


@pytest.mark.parametrize("name", ["cnn", "cnn_lstm", "cnn_transformer"])
@pytest.mark.parametrize("present", [["I"], ["aVF", "I", "II"]])
def test_slicing_the_first_layer_equals_feeding_zeros(name, present):
    """A convolution over zero channels adds nothing, so both policies give the same embedding before training."""
    full = encoder(12, name)
    zero = plan_leads(STANDARD_LEADS, present, "zero", source="ckpt", store="s")
    sliced_plan = plan_leads(STANDARD_LEADS, present, "slice", source="ckpt", store="s")
    sliced = encoder(len(present), name)
    sliced.load_state_dict(slice_state(full.state_dict(), sliced, sliced_plan, source="ckpt"))
    batch = torch.randn(3, len(present), 400, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = full(zero.adapter()(batch))
        got = sliced(sliced_plan.adapter()(batch))
    assert torch.allclose(got, expected, atol=1e-5)


def test_unseen_leads_and_bad_policies_are_clear_errors():
    with pytest.raises(EcgclError, match=r"store s has lead\(s\) X1,Y that ckpt was never trained on"):
        plan_leads(STANDARD_LEADS[:6], ["I", "X1", "Y"], "zero", source="ckpt", store="s")
    with pytest.raises(EcgclError, match="V1 that ckpt was never trained on"):
        plan_leads(STANDARD_LEADS[:6], ["I", "V1"], "zero", source="ckpt", store="s")
    with pytest.raises(EcgclError, match="--missing-leads"):
        plan_leads(STANDARD_LEADS, ["I"], "drop", source="ckpt", store="s")


def test_an_encoder_whose_weights_cannot_be_sliced_is_told_to_use_zero():
    plan = plan_leads(STANDARD_LEADS, ["I"], "slice", source="ckpt", store="s")
    state = {"proj.weight": torch.zeros(4, 12 * 5)}  # leads folded into another axis
    target = torch.nn.Module()
    target.proj = torch.nn.Linear(5, 4, bias=False)
    with pytest.raises(EcgclError, match="use --missing-leads zero"):
        slice_state(state, target, plan, source="ckpt")


def test_lead_masking_is_recognised_in_the_recorded_aug():
    assert lead_masking_used("lead_mask:keep=3+noise", REGISTRY) and lead_masking_used("permute+lead_mask", REGISTRY)
    assert not lead_masking_used("permute+noise", REGISTRY) and not lead_masking_used(None, REGISTRY)
    assert default_policy({"aug": "lead_mask"}, REGISTRY) == "zero"
    assert default_policy({"aug": "noise"}, REGISTRY) == "slice"
    assert default_policy({"aug": "noise", "pretrain_aug": "lead_mask"}, REGISTRY) == "zero"
    assert default_policy({"aug": "lead_mask"}) == "zero"  # without a registry: the process-wide one
