"""`ecgcl show --aug`: what an objective trains on for one record, drawn the way pretraining draws it.

The augmentation and objective are built by `prepare` and `Experiment.new_objective`, exactly as `ecgcl pretrain`
builds them (same registry, `RuntimeContext`: fs, leads, view length), around an encoder initialised like a run's.
The batch is read through the pretraining dataset, and the objective's own `draws` (which its `forward` calls)
takes the generator pretraining uses: epoch E of a run with `--seed S` draws every augmentation and mask of its
batches from `Generator().manual_seed(PretrainSettings.seed_for("pretrain", "aug", E - 1))`, the settings' seed
being `derive_seed(S, "pretrain")`. So the preview of a record with `--seed S` is exactly what the first batch of
epoch E (default 1) of a run with `--seed S` draws when that batch holds this record (per-record draws depend on
a record's place in its batch, so in a batch with others its views differ). With a masked objective's
`pretrain.last.pt`, the decoder's reconstruction of the hidden patches comes too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgcl.errors import EcgclError


@dataclass
class Preview:
    """A written preview: the file, the record, the original (L, T) signal and what the objective drew for it
    (`views`, or `input` with token `mask`), `patches` ((lead, start, stop) samples of every token) and the
    masked objective's `reconstruction` ((N, patch_samples), only where a checkpoint was given)."""

    path: Path
    record_id: str
    original: torch.Tensor
    drawn: dict[str, Any]
    patches: list[tuple[int, int, int]] = field(default_factory=list)
    reconstruction: torch.Tensor | None = None
    shaded: int = 0  # hidden patches shaded on the figure


def aug_generator(seed: int, epoch: int = 1) -> torch.Generator:
    """The CPU generator epoch `epoch` (1-based) of a pretraining run with run seed `seed` draws its views from."""
    from ecgcl.engine.device import derive_seed
    from ecgcl.engine.settings import PretrainSettings

    settings = PretrainSettings(epochs=epoch, batch_size=2, lr=0.0, weight_decay=0.0,
                                seed=derive_seed(seed, "pretrain"), window=1, representation="time")
    return torch.Generator().manual_seed(settings.seed_for("pretrain", "aug", epoch - 1))


def preview_experiment(store: str | os.PathLike, *, aug: str | None, objective: str | None, encoder: str | None,
                       seed: int, checkpoint: str | None = None, registry=None):
    """The `Experiment` pretraining would run (on CPU) and the checkpoint's state (None without one)."""
    from ecgcl.config import RunConfig
    from ecgcl.engine.checkpoint import load_checkpoint_of_kind
    from ecgcl.protocol.runner import encoders_that_fit, objective_entry, prepare

    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    options: dict[str, Any] = {}
    state = None
    if checkpoint is not None:
        state = load_checkpoint_of_kind(checkpoint, "pretrain", needed_by="--checkpoint takes a masked objective's "
                                        "pretrain.last.pt (it holds the decoder)", registry=registry)
        meta = state["meta"]
        if objective is not None and objective != meta["objective"]:
            raise EcgclError(f"--objective {objective}: checkpoint {checkpoint} was pretrained with "
                             f"{meta['objective']!r}; leave --objective out")
        objective, aug = meta["objective"], aug if aug is not None else meta.get("aug")
        options = {"encoder": meta["encoder"], "encoder_args": dict(meta["encoder_args"]),
                   "embed_dim": meta["embed_dim"], "input": meta["representation"]}
        if not hasattr(objective_entry(registry, objective).factory, "reconstruct"):
            raise EcgclError(f"--checkpoint: objective {meta['objective']!r} reconstructs nothing; a reconstruction "
                             f"needs a masked objective's pretrain.last.pt (--objective masked)")
    objective = objective or "contrastive"
    if "encoder" not in options:
        fitting = encoders_that_fit(registry, objective_entry(registry, objective).factory_attribute("needs"))
        options["encoder"] = encoder or (fitting[0] if fitting else "cnn")
    data = str(store)
    if data == "sample" and not Path(data).exists():
        data = None
    config = RunConfig(data=data, objective=objective, aug=aug, seed=seed, device="cpu", **options)
    return prepare(config, registry=registry, need_labels=False), state


def draw_batch(exp, rows: np.ndarray, *, seed: int, epoch: int = 1, state: dict | None = None):
    """(the batch, what the objective drew for it, the pretraining step module) for store `rows`, with the
    encoder and objective a run with run seed `seed` starts from (or the checkpoint `state`)."""
    from ecgcl.data.dataset import ECGDataset, collate_batch
    from ecgcl.engine.device import derive_seed
    from ecgcl.engine.pretraining import PretrainStep

    encoder = exp.new_encoder(derive_seed(seed, "init"))
    objective = exp.new_objective(encoder)
    if state is not None:
        encoder.load_state_dict(state["encoder"])
        objective.load_state_dict(state["objective"])
    step = PretrainStep(encoder, objective, window=exp.window, representation=exp.config.input)
    step.train()  # as pretraining runs it
    signals = collate_batch(ECGDataset(exp.store, np.asarray(rows)).__getitems__(list(range(len(rows)))))[0]
    try:
        with torch.no_grad():
            drawn = objective.draws(step.encoder, signals, aug_generator(seed, epoch))
    except NotImplementedError as error:
        raise EcgclError(f"--objective {exp.config.objective}: {error}, so it has no preview") from None
    return signals, drawn, step


def preview(store, record_id: str, *, aug: str | None = None, objective: str | None = None,
            encoder: str | None = None, seed: int = 0, epoch: int = 1, checkpoint: str | None = None,
            out: str | os.PathLike = "preview.png", dpi: int = 150, registry=None) -> Preview:
    """Draw record `record_id` of `store` and what `objective` (default contrastive) trains on with `--aug
    aug` (default: the objective's own) in epoch `epoch` of a run with `--seed seed` (see the module docstring);
    `checkpoint`: a masked objective's `pretrain.last.pt`, whose reconstruction of the hidden patches is drawn."""
    from ecgcl.data.picks import pick_rows
    from ecgcl.data.show import record_name
    from ecgcl.errors import require_positive_ints
    from ecgcl.protocol.preview_figure import preview_figure

    require_positive_ints("show", dpi=dpi, epoch=epoch)
    if isinstance(record_id, (list, tuple)) or "," in str(record_id).strip(","):
        raise EcgclError(f"--aug previews one record; --records gave {record_id!r}")
    exp, state = preview_experiment(store, aug=aug, objective=objective, encoder=encoder, seed=seed,
                                    checkpoint=checkpoint, registry=registry)
    row = pick_rows(exp.store, records=str(record_id))[0]
    signals, drawn, step = draw_batch(exp, np.array([row]), seed=seed, epoch=epoch, state=state)
    patches, reconstruction = [], None
    if "mask" in drawn:
        from ecgcl.plugins.objectives.tokens import token_layout

        lead, time_patch, size = token_layout(step.encoder.module, exp.config.objective)
        patches = [(int(l), int(t) * size, (int(t) + 1) * size) for l, t in zip(lead.tolist(), time_patch.tolist())]
    if state is not None:
        reconstruction = _reconstruction(step, drawn)
    name = record_name(exp.store, row)
    shown = Preview(Path(out), name, signals[0], {k: _first(v) for k, v in drawn.items()}, patches, reconstruction)
    title = (f"record {name}   objective {exp.config.objective}   aug {exp.aug_spec}   seed {seed}, epoch {epoch}, "
             f"first batch   {exp.store.fs:g} Hz")
    shown.shaded = preview_figure(shown, exp.store.leads, exp.store.fs, title, dpi=dpi)
    return shown


def _first(value: Any) -> Any:
    """The first record of a batch tensor (or of each of a pair of views)."""
    if isinstance(value, (tuple, list)):
        return tuple(v[0] for v in value)
    return value[0]


@torch.no_grad()
def _reconstruction(step, drawn: dict[str, Any]) -> torch.Tensor:
    """The decoder's (N, patch_samples) patches of the first record, in the signal's units (a `norm_target`
    prediction is scaled back with each true patch's mean and standard deviation, as MAE's figures do)."""
    step.eval()
    objective = step.objective
    predicted = objective.reconstruct(step.encoder, drawn)[0]
    if getattr(objective, "norm_target", False):
        truth = step.encoder.patches(drawn["input"])[0]
        predicted = predicted * (truth.var(-1, keepdim=True) + 1e-6).sqrt() + truth.mean(-1, keepdim=True)
    return predicted
