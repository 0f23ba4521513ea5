"""Third-party components work wherever the built-ins do: by-name runtime context, no global defaults,
contract checks on a dummy batch, and failures that name the plugin and distribution (one line, exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import Tensor, nn

import ecgcl
import ecgcl.manager
from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.interfaces import Augmentation, Loss
from ecgcl.manager import create_plugin_manager
from ecgcl.registry import Source

SOURCE = Source("ecgcl-test-plugins", "1.0", "testplug")
NAMED = "(plugin 'testplug' of ecgcl-test-plugins 1.0)"
SMALL = ["--embed-dim", "8", "--projection-dim", "8", "--batch-size", "32", "--val-fraction", "0.25",
         "--test-fraction", "0.25", "--pretrain-epochs", "1", "--finetune-epochs", "1", "--device", "cpu"]


class TinyPool(nn.Module):
    """Mean and max over time, then a linear layer: no width, depth or length options; asks for `fs` (so
    evaluate must rebuild it with the training data's rate)."""

    def __init__(self, in_leads: int, fs: float, embed_dim: int = 16) -> None:
        super().__init__()
        self.embed_dim, self.fs = embed_dim, fs
        self.out = nn.Linear(2 * in_leads, embed_dim)

    def forward(self, batch: Tensor) -> Tensor:
        return self.out(torch.cat([batch.mean(-1), batch.amax(-1)], dim=1))


class WideEncoder(TinyPool):
    """Returns one value too many per recording."""

    def forward(self, batch: Tensor) -> Tensor:
        out = super().forward(batch)
        return torch.cat([out, out[:, :1]], dim=1)


class NanEncoder(TinyPool):
    """Returns NaN."""

    def forward(self, batch: Tensor) -> Tensor:
        return super().forward(batch) * float("nan")


class FlakyEncoder(TinyPool):
    """Passes the check, then fails inside the training loop."""

    def forward(self, batch: Tensor) -> Tensor:
        if self.training and torch.is_grad_enabled():
            raise RuntimeError("kernel exploded")
        return super().forward(batch)


class BrokenFactoryEncoder(TinyPool):
    """Cannot even be built."""

    def __init__(self, in_leads: int, fs: float, embed_dim: int = 16) -> None:
        raise RuntimeError("weights file missing")


class FsProbe(Augmentation):
    """Records the sampling rate, leads and length the runtime gave it; changes nothing."""

    name = "fs_probe"
    seen: list = []

    def __init__(self, fs: float, leads: tuple, length: int, scale: float = 1.0) -> None:
        self.fs, self.leads, self.length, self.scale = fs, leads, length, scale
        FsProbe.seen.append((fs, tuple(leads), length))

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return batch * self.scale


class DropOne(Augmentation):
    """Drops the last recording of the batch."""

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return batch[:-1]


class Crop(Augmentation):
    """Shortens the recordings without saying so in `output_shape`."""

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return batch[..., :-10]


class NanAug(Augmentation):
    """Returns NaN."""

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return batch * float("nan")


class VectorLoss(Loss):
    """Per-recording losses instead of their mean."""

    def forward(self, z1: Tensor, z2: Tensor, patient_ids: Tensor | None = None) -> Tensor:
        return (z1 - z2).pow(2).sum(dim=1)


class TestPlugin:
    @ecgcl.hookimpl
    def register_encoders(self, registry):
        for name, factory in (("tiny_pool", TinyPool), ("wide", WideEncoder), ("nan_encoder", NanEncoder),
                              ("flaky", FlakyEncoder), ("broken_factory", BrokenFactoryEncoder)):
            registry.add(name, factory, kind="encoder")

    @ecgcl.hookimpl
    def register_augmentations(self, registry):
        for name, factory in (("fs_probe", FsProbe), ("drop_one", DropOne), ("crop", Crop), ("nan_aug", NanAug)):
            registry.add(name, factory, kind="augmentation")

    @ecgcl.hookimpl
    def register_losses(self, registry):
        registry.add("vector_loss", VectorLoss, kind="loss")


@pytest.fixture(autouse=True)
def with_test_plugin(monkeypatch):
    manager = create_plugin_manager(entry_points=False)
    manager.register(TestPlugin(), "testplug", SOURCE)
    monkeypatch.setattr(ecgcl.manager, "get_plugin_manager", lambda: manager)
    FsProbe.seen.clear()


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *parts):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in result.output and len(errors) == 1, result.output
    for part in parts:
        assert part in errors[0], result.output


def test_an_encoder_without_width_or_depth_works_in_run_pretrain_finetune_and_evaluate(tiny_store, tmp_path):
    ran = invoke("run", "--data", tiny_store, "--out", tmp_path / "run", "--encoder", "tiny_pool", *SMALL,
                 "--repeats", "1", "--methods", "pretrained_linear,supervised")
    assert ran.exit_code == 0, ran.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["encoder_args"] == {}
    pre = invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "pre", "--encoder", "tiny_pool", *SMALL)
    assert pre.exit_code == 0, pre.output
    tuned = invoke("finetune", "--checkpoint", tmp_path / "pre" / "pretrain.pt", "--data", tiny_store,
                   "--out", tmp_path / "ft", *SMALL[4:])
    assert tuned.exit_code == 0, tuned.output
    best = json.loads((tmp_path / "ft" / "metrics.json").read_text())["checkpoint"]
    evaluated = invoke("evaluate", best, "--data", tiny_store, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert 0 <= json.loads(evaluated.output)["auroc"] <= 1


def test_runtime_values_reach_the_factories_that_name_them(tiny_store, tmp_path):
    store = open_store(tiny_store)
    fast = write_store(tmp_path / "fs500", np.asarray(store.signals), store.metadata.assign(fs=500.0),
                       {**store.manifest, "fs": 500.0})
    for data, fs in ((tiny_store, 100.0), (fast, 500.0)):
        FsProbe.seen.clear()
        result = invoke("pretrain", "--data", data, "--out", tmp_path / f"p{fs:g}", "--aug", "fs_probe+noise",
                        "--encoder", "tiny_pool", *SMALL)
        assert result.exit_code == 0, result.output
        assert FsProbe.seen and set(FsProbe.seen) == {(fs, tuple(store.leads), store.signals.shape[2])}
        assert f"fs={fs}" in result.output.replace("\n", "")  # "augmentation as built: FsProbe(fs=500.0, ...)"


@pytest.mark.parametrize("args, message", [
    (["--encoder-arg", "length=5000", "--aug", "permute+noise"], "length is set from the store (1000); remove --encoder-arg length"),
    (["--encoder-arg", "in_leads=3"], "in_leads is set from the store (12 leads); remove --encoder-arg in_leads"),
    (["--encoder-arg", "embed_dim=32"], "embed_dim is set from --embed-dim (8); remove --encoder-arg embed_dim"),
    (["--encoder-arg", "device=cpu"], "device is set from --device (cpu); remove --encoder-arg device"),
    (["--aug", "fs_probe:fs=250"], "fs is set from the store (100 Hz); remove fs=... from --aug fs_probe:fs=250"),
    (["--aug", "fs_probe:leads=I"], "leads is set from the store (I,II,III"),
    (["--aug", "fs_probe:length=9"], "length is set from the store (1000); remove length=... from --aug"),
    (["--encoder-arg", "kernel_size=5000"], "encoder 'cnn' (plugin 'ecgcl.plugins.encoders' of ecgcl"),
])
def test_runtime_options_set_by_hand_are_one_line(tiny_store, tmp_path, args, message):
    one_line_error(invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "p", *SMALL, *args), message)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("args, message", [
    (["--encoder", "wide", "--aug", "permute+noise"], "encoder 'wide' " + NAMED + " returned (4, 9) for a batch of shape (4, 12, 1000); "
                                                        "expected (4, 8)"),
    (["--encoder", "nan_encoder"], "encoder 'nan_encoder' " + NAMED + " returned non-finite values"),
    (["--encoder", "broken_factory"], "encoder 'broken_factory' " + NAMED + " could not be built: RuntimeError: "
                                                                          "weights file missing"),
    (["--aug", "noise+drop_one"], "augmentation 'drop_one' " + NAMED + " returned shape (3, 12, 1000)"),
    (["--aug", "crop"], "augmentation 'crop' " + NAMED + " returned shape (4, 12, 990) for a batch of shape "
                                                         "(4, 12, 1000); expected (4, 12, 1000)"),
    (["--aug", "nan_aug"], "augmentation 'nan_aug' " + NAMED + " returned non-finite values (NaN or inf)"),
    (["--loss", "vector_loss"], "loss 'vector_loss' " + NAMED + " returned shape (4,); expected a scalar tensor"),
    (["--encoder", "flaky"], "encoder 'flaky' " + NAMED + " failed during training: RuntimeError: kernel exploded"),
])
def test_contract_violations_name_the_plugin_and_distribution(tiny_store, tmp_path, args, message):
    one_line_error(invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "p", *SMALL, *args), message)
