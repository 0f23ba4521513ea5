"""What `lead_mask` and `baseline_drift` document, checked exactly and statistically on real PTB-XL recordings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ecgcl.compose import parse_augmentations
from ecgcl.context import RuntimeContext
from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.errors import EcgclError
from ecgcl.manager import create_plugin_manager
from ecgcl.plugins.augmentations import BaselineDrift, LeadMask

LIMB = set(range(6))


@pytest.fixture(scope="module")
def ecg(ptbxl_dir) -> torch.Tensor:
    """64 real 12-lead 100 Hz recordings (eight records, eight times each), float32, without exact zeros."""
    import wfdb

    records = [wfdb.rdsamp(str(ptbxl_dir / "records100" / "00000" / f"{i:05d}_lr"))[0].T for i in range(1, 9)]
    batch = torch.from_numpy(np.stack(records)).float().repeat(8, 1, 1)
    return torch.where(batch == 0, torch.full_like(batch, 1e-3), batch)


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def kept(original: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): leads left untouched; every other lead must be exactly zero."""
    untouched = (out == original).all(dim=-1)
    zeroed = (out == 0).all(dim=-1)
    assert (untouched ^ zeroed).all(), "a lead is either kept whole or zeroed whole"
    return untouched


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_each_lead_is_zeroed_with_probability_p(ecg, p):
    masks = torch.cat([kept(ecg, LeadMask(p=p)(ecg, g(seed))) for seed in range(10)])  # 640 samples x 12 leads
    dropped = int((~masks).sum())
    n = masks.numel()
    expected = p - p ** 12 / 12  # a sample that would lose all 12 leads keeps one of them
    assert stats.binomtest(dropped, n, expected).pvalue > 1e-3
    per_lead = (~masks).float().mean(dim=0)
    assert (per_lead - p).abs().max() < 0.08  # no lead is favoured (640 draws per lead)


def test_at_least_one_lead_always_stays_even_when_every_lead_is_dropped(ecg):
    masks = kept(ecg, LeadMask(p=1.0)(ecg, g(1)))
    assert (masks.sum(dim=1) == 1).all()
    assert len(set(masks.float().argmax(dim=1).tolist())) > 6  # the kept lead is random per sample


def test_keep_k_keeps_exactly_k_random_leads_per_sample(ecg):
    masks = torch.cat([kept(ecg, LeadMask(keep=3)(ecg, g(seed))) for seed in range(10)])
    assert (masks.sum(dim=1) == 3).all()
    counts = masks.sum(dim=0).numpy()
    # each lead is kept in 3/12 of 640 samples on average: a chi-square test of uniformity over leads
    assert stats.chisquare(counts).pvalue > 1e-3


def test_the_mask_is_drawn_per_sample(ecg):
    masks = kept(ecg, LeadMask(p=0.5)(ecg, g(2)))
    assert len({tuple(row.tolist()) for row in masks}) > 40  # 64 samples, 4096 possible masks


@pytest.mark.parametrize("kwargs", [{"p": 0.9}, {"keep": 1}, {"p": 1.0}])
def test_keep_limb_always_keeps_a_limb_lead(ecg, kwargs):
    for seed in range(5):
        masks = kept(ecg, LeadMask(keep_limb=True, **kwargs)(ecg, g(seed)))
        assert masks[:, :6].any(dim=1).all()
    only_limb = kept(ecg, LeadMask(keep=1, keep_limb=True)(ecg, g(0)))
    assert not only_limb[:, 6:].any()


def test_keep_limb_finds_limb_leads_by_name_in_any_order(ecg):
    order = list(range(6, 12)) + list(range(6))  # precordial first
    names = [STANDARD_LEADS[i] for i in order]
    aug = parse_augmentations("lead_mask:keep=1,keep_limb=true", create_plugin_manager(entry_points=False).registry,
                              RuntimeContext(leads=tuple(names), fs=100.0))
    assert aug.parts[0].leads == tuple(names)
    masks = kept(ecg[:, order], aug(ecg[:, order], g(0)))
    assert (masks.sum(dim=1) == 1).all() and not masks[:, :6].any()  # the one kept lead is a limb lead


def test_lead_mask_errors_name_the_option(ecg):
    with pytest.raises(EcgclError, match="'lead_mask'.*p"):
        LeadMask(p=1.5)
    with pytest.raises(EcgclError, match="'lead_mask'.*keep"):
        LeadMask(keep=0)
    with pytest.raises(EcgclError, match="keep=13 but the batch has only 12 leads"):
        LeadMask(keep=13)(ecg, g())
    with pytest.raises(EcgclError, match="none of V1,V2 is a limb lead"):
        LeadMask(keep_limb=True, leads=["V1", "V2"])(ecg[:, 6:8], g())
    with pytest.raises(EcgclError, match="keep_limb needs the names"):
        LeadMask(keep_limb=True)(ecg[:, :3], g())


def test_baseline_drift_adds_a_slow_sinusoid_scaled_to_each_lead(ecg):
    aug = BaselineDrift(amplitude=0.5, min_hz=0.1, max_hz=0.3, fs=100.0)
    drift = (aug(ecg.double(), g(0)) - ecg.double())
    sigma = ecg.double().std(dim=-1, correction=0)
    # a sinusoid of amplitude a has standard deviation a / sqrt(2) over whole periods (10 s >= 1 period here)
    ratio = drift.std(dim=-1, correction=0) / (0.5 * sigma / np.sqrt(2))
    assert ratio.mean().item() == pytest.approx(1.0, abs=0.15)
    spectrum = torch.fft.rfft(drift[:, 0], n=10000).abs()
    peak_hz = spectrum.argmax(dim=-1).double() * 100.0 / 10000
    assert ((peak_hz >= 0.05) & (peak_hz <= 0.35)).all()
    # mode="sample": one frequency and phase per sample, so all leads drift alike relative to their std
    assert torch.allclose(drift[:, 0] / sigma[:, :1], drift[:, 3] / sigma[:, 3:4], atol=1e-9)


def test_baseline_drift_refuses_frequencies_above_nyquist():
    with pytest.raises(EcgclError, match="'baseline_drift'.*fs/2"):
        BaselineDrift(max_hz=60.0, fs=100.0)
