"""The `patch_transformer` token encoder and the `masked` (ST-MEM) and `jepa` (ECG-JEPA) objectives: token API
shapes and order, masks drawn from the generator, the reconstruction loss on hidden patches only, the EMA update
by hand, learning on real records, exact resume with the EMA target, and the one-line option errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ecgcl.compose import build_component
from ecgcl.context import RuntimeContext
from ecgcl.contracts import check_objective
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine.loops import pretrain
from ecgcl.engine.settings import Checkpoints, PretrainSettings, TrainingContext
from ecgcl.engine.model import build_encoder
from ecgcl.engine.pretraining import NEEDS, PretrainEncoder, PretrainStep
from ecgcl.errors import EcgclError
from ecgcl.manager import get_registry
from ecgcl.plugins.encoders.patch_transformer import PatchTransformerEncoder
from ecgcl.plugins.objectives.ema import ema_momentum
from ecgcl.plugins.objectives.jepa import JEPA, block_mask
from ecgcl.plugins.objectives.masked import MaskedModelling, masked_patch_loss
from ecgcl.plugins.objectives.tokens import random_mask

TINY = {"width": 16, "depth": 1, "heads": 2, "dropout": 0.0}
SMALL_HEADS = {"masked": {"decoder_dim": 16, "decoder_heads": 2}, "jepa": {"predictor_dim": 16, "predictor_heads": 2}}
OBJECTIVES = {"masked": MaskedModelling, "jepa": JEPA}


def tiny_encoder(length: int = 1000, name: str = "patch_transformer", **options) -> torch.nn.Module:
    torch.manual_seed(0)
    args = {**TINY, **options} if name == "patch_transformer" else {"width": 4, "depth": 1}
    return build_encoder(get_registry(), name, in_leads=12, window=length, representation="time", embed_dim=8,
                         encoder_args=args, context=RuntimeContext(fs=100.0))


def view(encoder: torch.nn.Module, length: int = 1000) -> PretrainEncoder:
    return PretrainEncoder(encoder, window=length, representation="time")


def real_batch(n: int = 8) -> torch.Tensor:
    store = open_store(sample_store_path())
    return torch.tensor(np.asarray(store.signals[:n]), dtype=torch.float32)


def test_both_objectives_are_registered_and_patch_transformer_fits_them():
    registry = get_registry()
    for name, cls in OBJECTIVES.items():
        assert registry.get("objective", name).factory is cls and cls.needs == "tokens"
    factory = registry.get("encoder", "patch_transformer").factory
    assert factory is PatchTransformerEncoder
    assert all(hasattr(factory, a) for a in NEEDS["tokens"] + NEEDS["sequence"])  # what `encoders_that_fit` reads


def test_embedding_and_token_api_shapes_on_real_records():
    batch = real_batch(4)
    encoder = tiny_encoder().eval()
    assert encoder(batch).shape == tiny_encoder(name="cnn").eval()(batch).shape == (4, 8)
    assert encoder.patch_size == 50 and encoder.token_dim == encoder.sequence_dim == 16  # 0.5 s at 100 Hz
    tokens, patches = encoder.tokens(batch), encoder.patches(batch)
    assert tokens.shape == (4, 240, 16) and patches.shape == (4, 240, 50)  # 12 leads x 20 patches
    assert torch.equal(patches[:, 3 * 20 + 7], batch[:, 3, 350:400])  # lead-major: token = lead * steps + patch
    keep = torch.tensor([[0, 5, 239], [1, 2, 3], [9, 8, 7], [100, 0, 50]])
    assert encoder.encode_tokens(tokens, keep).shape == (4, 3, 16)
    assert encoder.sequence(batch).shape == (4, 20, 16)
    every = torch.arange(240).expand(4, 240)
    pooled = encoder.out(encoder.encode_tokens(tokens, every).mean(dim=1))
    torch.testing.assert_close(pooled, encoder(batch))  # forward = all tokens, mean, linear


def test_patch_length_follows_the_rate_and_a_remainder_is_cropped():
    assert PatchTransformerEncoder(length=5000, fs=500.0, **TINY).patch_size == 250
    encoder = PatchTransformerEncoder(in_leads=2, length=1030, fs=100.0, **TINY)
    x = torch.randn(1, 2, 1030)
    assert encoder.patches(x).shape == (1, 40, 50) and torch.equal(encoder.patches(x)[0, -1], x[0, 1, 950:1000])
    with pytest.raises(EcgclError, match="patch_size"):
        PatchTransformerEncoder(length=40, fs=100.0)  # 50-sample patches do not fit 40 samples


def test_random_mask_hides_the_ratio_of_every_record_and_follows_the_generator():
    keep, mask = random_mask(5, 240, 0.75, torch.Generator().manual_seed(1))
    assert keep.shape == (5, 60) and torch.equal(mask.sum(dim=1), torch.full((5,), 180))
    assert not mask.gather(1, keep).any()
    again, _ = random_mask(5, 240, 0.75, torch.Generator().manual_seed(1))
    assert torch.equal(keep, again) and not torch.equal(keep[0], keep[1])


@pytest.mark.parametrize("norm_target", [False, True])
def test_masked_loss_ignores_the_visible_patches(norm_target):
    encoder = tiny_encoder()
    patches = encoder.patches(real_batch(4))
    generator = torch.Generator().manual_seed(0)
    _, mask = random_mask(4, 240, 0.75, generator)
    predictions = torch.randn(patches.shape, generator=generator)
    loss = masked_patch_loss(predictions, patches, mask, norm_target)
    altered = torch.where(mask.unsqueeze(-1), patches, torch.randn(patches.shape, generator=generator) * 5)
    assert torch.equal(masked_patch_loss(predictions, altered, mask, norm_target), loss)
    changed = torch.where(mask.unsqueeze(-1), patches + torch.randn(patches.shape, generator=generator), patches)
    assert masked_patch_loss(predictions, changed, mask, norm_target) != loss
    by_hand = ((predictions - patches) ** 2).mean(-1)[mask].mean() if not norm_target else None
    if by_hand is not None:
        torch.testing.assert_close(loss, by_hand)


def test_jepa_blocks_are_contiguous_in_time_across_all_leads():
    lengths = torch.tensor([5, 5])
    steps = block_mask(64, 20, lengths, torch.Generator().manual_seed(0))
    assert torch.equal(steps.sum(dim=1), torch.full((64,), 10))
    runs = (steps[:, 1:] & ~steps[:, :-1]).sum(dim=1) + steps[:, 0]  # block starts per record
    assert torch.equal(runs, torch.full((64,), 2))  # two separate blocks, never merged
    assert len({tuple(row.tolist()) for row in steps}) > 10  # positions vary between records
    assert torch.equal(steps, block_mask(64, 20, lengths, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_loss_is_finite_and_decreases_on_real_records(name, losses_over_steps):
    batch = real_batch(8)[..., :500]  # the first 5 s: 120 tokens
    encoder = tiny_encoder(length=500)
    objective = OBJECTIVES[name](encoder, **SMALL_HEADS[name])
    losses = losses_over_steps(objective, view(encoder, 500), batch, steps=5, lr=3e-3)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_the_runtime_contract_check_passes(name):
    encoder = tiny_encoder()
    objective = OBJECTIVES[name](encoder, **SMALL_HEADS[name])
    step = PretrainStep(encoder, objective, window=1000, representation="time")
    check_objective(step, get_registry().get("objective", name), encoder, real_batch(4), torch.arange(4),
                    torch.Generator().manual_seed(0))


def test_jepa_ema_update_matches_a_hand_computation():
    encoder = tiny_encoder()
    objective = JEPA(encoder, **SMALL_HEADS["jepa"])
    assert all(not p.requires_grad for p in objective.target.parameters())
    assert any(k.startswith("target.") for k in objective.state_dict())  # checkpointed with the objective
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn_like(p))
    before = {k: v.clone() for k, v in objective.target.state_dict().items()}
    online = encoder.state_dict()
    m = 1 - (1 - 0.996) * (math.cos(math.pi * 3 / 9) + 1) / 2  # step 3 of 10: k / (K - 1)
    assert ema_momentum(3, 10, 0.996) == pytest.approx(m)
    objective.after_step(3, 10)
    for key, value in objective.target.state_dict().items():
        torch.testing.assert_close(value, m * before[key] + (1 - m) * online[key], rtol=1e-6, atol=1e-7)
    assert ema_momentum(0, 10, 0.996) == pytest.approx(0.996) and ema_momentum(9, 10, 0.996) == 1.0
    frozen = {k: v.clone() for k, v in objective.target.state_dict().items()}
    objective.after_step(9, 10)  # the last step: momentum 1, the target stays
    assert all(torch.equal(v, frozen[k]) for k, v in objective.target.state_dict().items())


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_mask_ratio_out_of_range_is_one_line_naming_option_and_value(name):
    encoder = tiny_encoder()
    with pytest.raises(EcgclError, match="mask_ratio.*1.5") as error:
        OBJECTIVES[name](encoder, mask_ratio=1.5)
    assert "\n" not in str(error.value)
    with pytest.raises(EcgclError, match="mask_ratio.*1.5"):  # as `--objective masked:mask_ratio=1.5` builds it
        build_component(get_registry(), "objective", f"{name}:mask_ratio=1.5",
                        context=RuntimeContext(encoder=encoder, augmentation=None))


def test_other_bad_options_and_encoders_name_the_problem():
    encoder = tiny_encoder()
    with pytest.raises(EcgclError, match="decoder_dim"):
        MaskedModelling(encoder, decoder_dim=0)
    with pytest.raises(EcgclError, match="distance"):
        JEPA(encoder, distance="cosine")
    with pytest.raises(EcgclError, match="blocks"):
        JEPA(tiny_encoder(length=100), blocks=2)  # 2 time patches cannot hold two separate blocks
    with pytest.raises(EcgclError, match="token encoder"):
        MaskedModelling(tiny_encoder(name="cnn"))


def _pretrain_jepa(where, on_epoch_end=None):
    store = open_store(sample_store_path())
    encoder = tiny_encoder(dropout=0.1)
    objective = JEPA(encoder, **SMALL_HEADS["jepa"])
    settings = PretrainSettings(epochs=2, batch_size=16, lr=0.01, weight_decay=0.0, seed=5, window=1000,
                                representation="time")
    context = TrainingContext(torch.device("cpu"), Checkpoints(last_path=where / "pretrain.last.pt"),
                              on_epoch_end=on_epoch_end)
    history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(32), settings=settings,
                       context=context)
    return history, encoder, objective


def test_interrupted_and_resumed_jepa_equals_the_uninterrupted_run(tmp_path, resume_equals_uninterrupted):
    _, (_, _, objective) = resume_equals_uninterrupted(_pretrain_jepa, tmp_path)
    initial = tiny_encoder(dropout=0.1).state_dict()
    target = objective.target.state_dict()
    assert any(not torch.equal(target[k], initial[k]) for k in initial)  # the EMA target moved
