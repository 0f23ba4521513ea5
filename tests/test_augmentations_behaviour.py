"""Statistical and exact checks of what each built-in augmentation documents, on real PTB-XL recordings.

Index ramps (x[t] = t) make the sampling pattern of permute, time_warp and clocs visible exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgcl.errors import EcgclError
from ecgcl.plugins.augmentations import Clocs, Dropout, Noise, Permute, TimeWarp, ZeroMask


@pytest.fixture(scope="module")
def ecg(ptbxl_dir) -> torch.Tensor:
    """Eight real 12-lead, 10 s, 100 Hz recordings, float32 (8, 12, 1000), without exact zeros."""
    import wfdb

    records = [
        wfdb.rdsamp(str(ptbxl_dir / "records100" / "00000" / f"{i:05d}_lr"))[0].T
        for i in range(1, 9)
    ]
    batch = torch.from_numpy(np.stack(records)).float()
    return torch.where(batch == 0, torch.full_like(batch, 1e-3), batch)  # so a zero always means "zeroed"


def ramp(batch: int = 6, leads: int = 12, length: int = 1000) -> torch.Tensor:
    """x[b, l, t] = t in float64: the output of an index-moving augmentation is then its source positions."""
    return torch.arange(length, dtype=torch.float64).expand(batch, leads, length).contiguous()


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- dropout -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_dropout_zeroes_the_given_fraction_of_each_lead(ecg, fraction):
    out = Dropout(fraction=fraction)(ecg, g())
    zeroed = (out == 0).double()
    assert zeroed.mean().item() == pytest.approx(fraction, abs=0.01)
    per_lead = zeroed.mean(dim=-1)  # 1000 samples per lead: binomial sd <= 0.015
    assert (per_lead - fraction).abs().max().item() < 0.07
    kept = out != 0
    assert torch.equal(out[kept], ecg[kept])  # the others are untouched


def test_dropout_sample_mode_zeroes_the_same_time_points_in_all_leads(ecg):
    zeroed = Dropout(fraction=0.2, mode="sample")(ecg, g()) == 0
    assert torch.equal(zeroed, zeroed[:, :1].expand_as(zeroed))
    lead_zeroed = Dropout(fraction=0.2, mode="lead")(ecg, g()) == 0
    assert not torch.equal(lead_zeroed, lead_zeroed[:, :1].expand_as(lead_zeroed))


# --- zero_mask -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sample", "lead"])
def test_zero_mask_zeroes_one_run_of_the_given_length(ecg, mode):
    out = ZeroMask(fraction=0.15, mode=mode)(ecg, g(1))
    zeroed = out == 0
    run = round(0.15 * ecg.shape[-1])
    assert (zeroed.sum(dim=-1) == run).all()
    positions = torch.arange(ecg.shape[-1])
    first = torch.where(zeroed, positions, ecg.shape[-1]).amin(dim=-1)
    last = torch.where(zeroed, positions, -1).amax(dim=-1)
    assert ((last - first + 1) == run).all()  # consecutive
    assert torch.equal(out[~zeroed], ecg[~zeroed])
    same_span = torch.equal(first, first[:, :1].expand_as(first))
    assert same_span == (mode == "sample")


def test_zero_mask_starts_cover_the_whole_signal():
    starts = ZeroMask(fraction=0.1, mode="lead").starts(ramp(64, 12, 200), g(2))
    assert starts.shape == (64, 12, 1)
    assert starts.min().item() == 0 and starts.max().item() == 200 - 20  # both extremes are drawn
    assert starts.float().mean().item() == pytest.approx(90, abs=5)  # uniform on 0..180


# --- noise ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("std", [0.05, 0.5])
def test_noise_level_is_relative_to_each_lead_std(ecg, std):
    batch = ecg.clone()
    batch[:, 0] *= 100.0  # a lead of very different amplitude gets proportionally more noise
    noise = (Noise(std=std)(batch, g(3)) - batch).double()
    ratio = noise.std(dim=-1) / batch.double().std(dim=-1, correction=0)
    assert (ratio / std - 1).abs().max().item() < 0.15  # 1000 samples: sd of the estimate about 2.2%
    assert ratio.mean().item() == pytest.approx(std, rel=0.02)
    assert noise.mean().abs().max().item() < 5 * std * batch.double().std(dim=-1).max().item() / 1000**0.5


def test_noise_of_zero_std_is_the_identity(ecg):
    assert torch.equal(Noise(std=0.0)(ecg, g()), ecg)


# --- permute -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("segments", "length"), [(5, 1000), (7, 1003), (1, 50), (50, 50), (3, 50), (49, 50)])
@pytest.mark.parametrize("mode", ["sample", "lead"])
def test_permute_keeps_the_multiset_of_segments(segments, length, mode):
    out = Permute(segments=segments, mode=mode)(ramp(6, 3, length), g(4)).long()
    bounds = set((torch.arange(segments + 1) * length // segments).tolist())
    assert torch.equal(out.sort(dim=-1).values, torch.arange(length).expand_as(out))  # a permutation of samples
    for row in out.reshape(-1, length).tolist():
        jumps = [0] + [t for t in range(1, length) if row[t] != row[t - 1] + 1] + [length]
        for start, end in zip(jumps[:-1], jumps[1:]):  # every maximal run is a union of whole pieces
            assert row[start] in bounds and row[end - 1] + 1 in bounds


@pytest.mark.parametrize("mode", ["sample", "lead"])
def test_permute_of_equal_pieces_matches_the_general_index_path(ecg, mode):
    aug = Permute(segments=8, mode=mode)  # 1000 / 8: the whole-piece fast path
    index = aug.source_indices(ecg, g(14))
    assert torch.equal(aug(ecg, g(14)), torch.gather(ecg, -1, index.expand(ecg.shape)))


def test_permute_on_real_data_keeps_the_values_and_shuffles(ecg):
    out = Permute(segments=5)(ecg, g(5))
    assert torch.equal(out.sort(dim=-1).values, ecg.sort(dim=-1).values)
    assert not torch.equal(out, ecg)


def test_permute_modes_share_or_split_the_order_across_leads():
    same = Permute(segments=8, mode="sample")(ramp(4, 12, 400), g(6))
    assert torch.equal(same, same[:, :1].expand_as(same))
    split = Permute(segments=8, mode="lead")(ramp(4, 12, 400), g(6))
    assert not torch.equal(split, split[:, :1].expand_as(split))


# --- time_warp -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_time_warp_keeps_length_and_endpoints(ecg, dtype):
    batch = ecg.to(dtype)
    out = TimeWarp(segments=6, stretch=0.3)(batch, g(7))
    assert out.shape == batch.shape
    assert torch.equal(out[..., 0], batch[..., 0]) and torch.equal(out[..., -1], batch[..., -1])
    assert not torch.equal(out, batch)


@pytest.mark.parametrize(("segments", "stretch"), [(4, 0.25), (10, 0.5), (2, 0.1)])
def test_time_warp_stretches_half_the_segments_and_squeezes_the_rest(segments, stretch):
    length = 2000
    source = TimeWarp(segments=segments, stretch=stretch, mode="lead")(ramp(4, 3, length), g(8))
    slopes = source.diff(dim=-1)
    assert (slopes > 0).all()  # monotone: the order of events is kept
    slow, fast = 1 / (1 + stretch), 1 / (1 - stretch)
    near_slow = (slopes - slow).abs() < 1e-6
    near_fast = (slopes - fast).abs() < 1e-6
    # a step straddling a knot mixes the two slopes; there are at most segments - 1 of them per lead
    assert ((~(near_slow | near_fast)).sum(dim=-1) <= segments - 1).all()
    stretched_share = near_slow.double().mean(dim=-1)  # stretched segments fill (1 + stretch) / 2 of the output
    assert (stretched_share - (1 + stretch) / 2).abs().max().item() < segments / length + 1e-9


def test_time_warp_without_stretch_is_the_identity(ecg):
    assert torch.allclose(TimeWarp(stretch=0.0)(ecg, g()), ecg, atol=1e-3)  # float32 grid: ~1e-4 samples off
    exact = ecg.double()
    assert torch.allclose(TimeWarp(stretch=0.0)(exact, g()), exact, atol=1e-9)


def test_time_warp_sample_mode_warps_all_leads_alike():
    same = TimeWarp(mode="sample")(ramp(4, 12, 500), g(9))
    assert torch.equal(same, same[:, :1].expand_as(same))
    split = TimeWarp(mode="lead")(ramp(4, 12, 500), g(9))
    assert not torch.equal(split, split[:, :1].expand_as(split))


# --- clocs ---------------------------------------------------------------------------------------------------

def test_clocs_cmsc_views_are_the_two_halves_of_each_recording(ecg):
    first, second = Clocs(strategy="cmsc").views(ecg, g(10))
    assert first.shape == second.shape == (8, 12, 500)
    for b in range(ecg.shape[0]):
        halves = {tuple(first[b].flatten().tolist()), tuple(second[b].flatten().tolist())}
        assert halves == {tuple(ecg[b, :, :500].flatten().tolist()), tuple(ecg[b, :, 500:].flatten().tolist())}


def test_clocs_cmsc_segments_are_adjacent_and_do_not_overlap():
    first, second = Clocs(strategy="cmsc", segment_length=300).views(ramp(32, 2, 1000), g(11))
    assert first.shape == (32, 2, 300)
    assert torch.equal(first.diff(dim=-1), torch.ones_like(first[..., 1:]))  # contiguous
    assert ((first[..., 0] - second[..., 0]).abs() == 300).all()  # adjacent, not overlapping
    offsets = torch.minimum(first[..., 0], second[..., 0])
    assert offsets.min() >= 0 and offsets.max() <= 400 and offsets.unique().numel() > 1


@pytest.mark.parametrize("lead_fraction", [0.5, 0.25])
def test_clocs_cmlc_views_are_disjoint_lead_groups(ecg, lead_fraction):
    first, second = Clocs(strategy="cmlc", lead_fraction=lead_fraction).views(ecg, g(12))
    assert first.shape == second.shape == ecg.shape
    in_first, in_second = first.abs().sum(-1) > 0, second.abs().sum(-1) > 0
    assert not (in_first & in_second).any() and (in_first | in_second).all()
    assert (in_first.sum(-1) == round(lead_fraction * 12)).all()
    assert torch.equal(first + second, ecg)  # each lead is kept unchanged in exactly one view
    assert in_first.unique(dim=0).shape[0] > 1  # groups drawn per recording


def test_clocs_cmsmlc_combines_segments_and_lead_groups(ecg):
    first, second = Clocs(strategy="cmsmlc").views(ecg, g(13))
    assert first.shape == second.shape == (8, 12, 500)
    in_first, in_second = first.abs().sum(-1) > 0, second.abs().sum(-1) > 0
    assert not (in_first & in_second).any() and (in_first | in_second).all()
    recombined = first + second  # leads of one half and the other leads of the other half
    halves = torch.stack([ecg[..., :500], ecg[..., 500:]], dim=1)  # (B, 2, L, S)
    from_half = (recombined.unsqueeze(1) == halves).all(-1)  # (B, 2, L)
    assert from_half.any(dim=1).all()


# --- parameter validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("factory", "kwargs", "parameter"),
    [
        (TimeWarp, {"segments": 3}, "segments"),
        (TimeWarp, {"segments": 0}, "segments"),
        (TimeWarp, {"stretch": 1.0}, "stretch"),
        (TimeWarp, {"stretch": -0.1}, "stretch"),
        (TimeWarp, {"mode": "leads"}, "did you mean 'lead'"),
        (Permute, {"segments": 0}, "segments"),
        (Permute, {"segments": 2.5}, "segments"),
        (ZeroMask, {"fraction": 1.0}, "fraction"),
        (ZeroMask, {"fraction": -0.2}, "fraction"),
        (Dropout, {"fraction": 1.5}, "fraction"),
        (Dropout, {"mode": "all"}, "mode"),
        (Noise, {"std": -1.0}, "std"),
        (Noise, {"std": float("nan")}, "std"),
        (Clocs, {"strategy": "cmcs"}, "did you mean 'cmsc'"),
        (Clocs, {"lead_fraction": 1.0}, "lead_fraction"),
        (Clocs, {"segment_length": 0}, "segment_length"),
    ],
)
def test_invalid_parameters_name_the_augmentation_and_the_parameter(factory, kwargs, parameter):
    with pytest.raises(EcgclError, match=rf"'{factory.name}'.*{parameter}"):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("aug", "length", "parameter"),
    [
        (Permute(segments=20), 10, "segments"),
        (TimeWarp(segments=12), 10, "segments"),
        (Clocs(segment_length=600), 1000, "segment_length"),
    ],
)
def test_a_segment_longer_than_the_signal_is_a_clear_error(aug, length, parameter):
    with pytest.raises(EcgclError, match=rf"'{aug.name}'.*{parameter}"):
        aug(ramp(2, 2, length).float(), g())


def test_clocs_lead_groups_need_two_leads():
    with pytest.raises(EcgclError, match="clocs.*2 leads"):
        Clocs(strategy="cmlc").views(ramp(2, 1, 100), g())


def test_shared_mode_is_the_lead_consistent_mode():
    assert Dropout(mode="shared").mode == "sample"
