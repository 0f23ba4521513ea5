"""`ecgcl show --aug`: the views or masked input an objective trains on, drawn as pretraining draws them.

The preview's tensors are compared with those the real pretraining loop drew for its first batch (a spy on the
objective's `draws`, which `forward` calls), with the same run seed; a masked objective's mask hides its
`mask_ratio` of the tokens and each hidden patch is shaded; its checkpoint gives a reconstruction per patch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store
from ecgcl.plugins.objectives.tokens import round_half_up
from ecgcl.protocol.preview import draw_batch, preview, preview_experiment
from ecgcl.protocol.runner import run_pretraining


def _pretrain(exp, rows, folder, seed, *, batch_size, monkeypatch=None, spy_on=None):
    """Run the real pretraining stage for one epoch; with `spy_on`, the first batch's draws of that class."""
    exp.config = dataclasses.replace(exp.config, batch_size=batch_size, pretrain_epochs=1)
    seen = []
    if spy_on is not None:
        original = spy_on.draws

        def spy(self, encoder, batch, generator):
            drawn = original(self, encoder, batch, generator)
            seen.append({k: tuple(x.detach().clone() for x in v) if isinstance(v, tuple) else v.detach().clone()
                         for k, v in drawn.items()})
            return drawn

        monkeypatch.setattr(spy_on, "draws", spy)
    run_pretraining(exp, np.asarray(rows), folder, seed, unit={})
    return seen


def test_preview_equals_the_views_pretraining_drew_for_that_batch(tiny_store, tmp_path, monkeypatch):
    from ecgcl.plugins.objectives.contrastive import Contrastive

    store = open_store(tiny_store)
    record = str(store.metadata["record_id"].iat[3])
    exp, _ = preview_experiment(tiny_store, aug="permute+noise", objective="contrastive", encoder=None, seed=11)
    seen = _pretrain(exp, [3, 3], tmp_path, 11, batch_size=2, monkeypatch=monkeypatch, spy_on=Contrastive)
    monkeypatch.undo()
    batch, drawn, _ = draw_batch(exp, np.array([3, 3]), seed=11)
    assert torch.equal(batch[0], torch.from_numpy(store.read(np.array([3]))[0]))
    for ours, theirs in zip(drawn["views"], seen[0]["views"]):
        assert torch.equal(ours, theirs)
    # the one-record preview is the same code path on a batch of that record alone
    shown = preview(tiny_store, record, aug="permute+noise", seed=11, out=tmp_path / "p.png")
    alone = draw_batch(exp, np.array([3]), seed=11)[1]["views"]
    assert all(torch.equal(a[0], b) for a, b in zip(alone, shown.drawn["views"]))
    assert not torch.equal(shown.drawn["views"][0], shown.original)  # the views are perturbed
    other = preview(tiny_store, record, aug="permute+noise", seed=12, out=tmp_path / "q.png")
    assert not torch.equal(other.drawn["views"][0], shown.drawn["views"][0])
    assert Image.open(tmp_path / "p.png").size[0] > 500


def test_masked_preview_shades_its_mask_ratio_and_a_checkpoint_reconstructs_each_patch(tiny_store, tmp_path):
    store = open_store(tiny_store)
    record = str(store.metadata["record_id"].iat[0])
    shown = preview(tiny_store, record, objective="masked", seed=0, out=tmp_path / "m.png")
    mask = shown.drawn["mask"]
    assert mask.dim() == 1 and mask.sum() == round_half_up(0.75 * len(mask))
    assert shown.shaded == int(mask.sum()) and len(shown.patches) == len(mask)
    assert {lead for lead, _, _ in shown.patches} == set(range(store.signals.shape[1]))
    assert shown.reconstruction is None and (tmp_path / "m.png").is_file()

    exp, _ = preview_experiment(tiny_store, aug=None, objective="masked", encoder=None, seed=0)
    _pretrain(exp, np.arange(8), tmp_path / "run", 0, batch_size=4)
    checkpoint = tmp_path / "run" / "pretrain.last.pt"
    rebuilt = preview(tiny_store, record, checkpoint=str(checkpoint), seed=0, out=tmp_path / "r.png")
    patch = shown.patches[0][2] - shown.patches[0][1]
    assert rebuilt.reconstruction.shape == (len(mask), patch)
    assert torch.isfinite(rebuilt.reconstruction).all()
    assert torch.equal(rebuilt.drawn["mask"], mask)  # the same draws, whatever the weights


def _cli(*args):
    return CliRunner().invoke(cli, ["show", *[str(a) for a in args]])


def test_the_command_writes_a_preview(tiny_store, tmp_path):
    record = str(open_store(tiny_store).metadata["record_id"].iat[1])
    result = _cli(tiny_store, "--records", record, "--aug", "noise", "--seed", "3", "--out", tmp_path / "v.png")
    assert result.exit_code == 0, result.output
    assert f"record {record}" in result.output and (tmp_path / "v.png").is_file()


@pytest.fixture(scope="module")
def contrastive_checkpoint(tiny_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("contrastive")
    exp, _ = preview_experiment(tiny_store, aug="noise", objective="contrastive", encoder=None, seed=0)
    _pretrain(exp, np.arange(4), folder, 0, batch_size=2)
    return folder / "pretrain.last.pt"


@pytest.mark.parametrize("args, message", [
    (["--records", "1,2", "--aug", "noise"], "--aug previews one record"),
    (["--random", "2", "--aug", "noise"], "--aug previews one record"),
    (["--records", "1", "--aug", "nosie"], "did you mean 'noise'"),
    (["--records", "nosuch", "--aug", "noise"], "no record 'nosuch'"),
    (["--records", "1", "--checkpoint", "CONTRASTIVE"], "reconstructs nothing"),
])
def test_bad_input_is_one_line_exit_2(tiny_store, tmp_path, monkeypatch, contrastive_checkpoint, args, message):
    monkeypatch.chdir(tmp_path)
    args = [str(contrastive_checkpoint) if a == "CONTRASTIVE" else a for a in args]
    result = _cli(tiny_store, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert list(tmp_path.iterdir()) == []
