"""The Python API: what the `ecgcl` commands do, as functions for notebooks and scripts (`import ecgcl`).

Each function is the code path its command runs: `ecgcl.ingest` is `ecgcl ingest`, `ecgcl.pretrain` is
`ecgcl pretrain`, `ecgcl.run` is `ecgcl run`, `ecgcl.list_components` is `ecgcl list-plugins --json`, and
`ecgcl.load_encoder` reads what `ecgcl pretrain`, `ecgcl run` and `ecgcl export` write. Options are the
commands' options as keyword arguments (`pretrain_epochs=20`, `aug="permute+noise"`, `encoder_args={"width":
32}`); a misspelt one is an `EcgclError` with a suggestion. Nothing is printed: pass an
`ecgcl.reporting.Reporter` to follow progress.

    import ecgcl
    encoder = ecgcl.load_encoder("runs/pre/pretrain.pt")
    z = encoder.embed(x, fs=500, leads=["I", "II", "V1", ...])   # (N, leads, samples) in mV -> (N, embed_dim)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ecgcl.config import FIELD_NAMES, RunConfig, resolve_config
from ecgcl.data.ingest import IngestResult
from ecgcl.data.ingest import ingest as _ingest
from ecgcl.data.store import ECGStore
from ecgcl.data.store import open_store as _open_store
from ecgcl.engine.pretrained import PretrainedEncoder
from ecgcl.engine.pretrained import load_encoder as _load_encoder
from ecgcl.errors import EcgclError, did_you_mean
from ecgcl.interfaces import TaskTargets
from ecgcl.reporting import Reporter

if TYPE_CHECKING:  # pragma: no cover
    from ecgcl.data.show import Sheet


@dataclass
class RunResult:
    """What `ecgcl.run` wrote: the summary over repeats (and paired differences) and the per-repeat rows as
    DataFrames, the results folder and its files."""

    out: Path
    summary: pd.DataFrame
    rows: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    protocol: Any = None  # the `ProtocolResult` (or `GridResult` for a grid) behind it


@dataclass
class PretrainResult:
    """What `ecgcl.pretrain` wrote: the encoder checkpoint, the loss and monitor figures per epoch, and which epoch
    the checkpoint keeps (`chosen`: epoch, by, value)."""

    checkpoint: Path
    history: pd.DataFrame
    out: Path
    chosen: dict[str, Any] | None = None


def load_encoder(path_or_id: str | os.PathLike) -> PretrainedEncoder:
    """A trained encoder from a checkpoint (`pretrain.pt`, `*.best.pt`), an `ecgcl export` folder, or
    `hf://ORG/NAME`; `.embed(signals, fs=..., leads=...)` embeds raw arrays, `.torch_module` is the module."""
    return _load_encoder(path_or_id)


def open_store(path: str | os.PathLike) -> ECGStore:
    """A store written by `ingest`: `.signals` (records, leads, samples) memory-mapped mV, `.metadata` (a
    DataFrame, one row per record), `.fs`, `.leads`, `.manifest`; `targets(store, task)` gives a task's."""
    return _open_store(path)


def targets(store: ECGStore | str | os.PathLike, task: str = "normal_vs_abnormal") -> TaskTargets:
    """The targets of `task` (as `--task` takes it: `has:AF`, `labels:min=20`, `column:rhythm` ...) on a store:
    `y`, the `labelled` mask, `class_names` and the target kind."""
    from ecgcl.tasks import task_targets

    store = store if isinstance(store, ECGStore) else _open_store(store)
    return task_targets(task, store.metadata)


def ingest(source: str | os.PathLike, out: str | os.PathLike, *, reporter: Reporter | None = None,
           **options: Any) -> IngestResult:
    """Ingest `source` into a new store at `out` (`ecgcl ingest`); options as its flags: `fs=500`,
    `length=10`, `leads="I,II,V1"`, `band="0.5-40"`, `statements_as_labels=True` ..."""
    return _ingest(source, out, reporter=reporter, **options)


def run_config(**options: Any) -> RunConfig:
    """The `RunConfig` of `ecgcl run`/`pretrain` options given as keyword arguments (checked and converted)."""
    for name in options:
        if name not in FIELD_NAMES:
            raise EcgclError(f"unknown option {name!r}{did_you_mean(name, list(FIELD_NAMES))}; the options are "
                             "the fields of ecgcl.config.RunConfig")
    return resolve_config(None, options)


def pretrain(*, reporter: Reporter | None = None, all_records: bool = False, overwrite: bool = False,
             **options: Any) -> PretrainResult:
    """Pretrain an encoder on a store (`ecgcl pretrain`): `data=` the store (default: the embedded sample),
    `out=` the folder for `pretrain.pt`, and any other option of the command."""
    from contextlib import nullcontext

    from ecgcl.protocol.single import pretrain_once

    result = pretrain_once(run_config(**options), all_records=all_records, overwrite=overwrite,
                           progress=(lambda: nullcontext(reporter)) if reporter is not None else None)
    return PretrainResult(Path(result.checkpoint), pd.DataFrame(result.history), Path(result.checkpoint).parent,
                          result.chosen)


def run(*, reporter: Reporter | None = None, overwrite: bool = False, **options: Any) -> RunResult:
    """The repeated patient-level protocol (`ecgcl run`), or a grid when `aug`/`encoder`/`objective` are lists;
    `out=` the results folder, and any other option of the command."""
    from ecgcl.protocol.runner import run_protocol
    from ecgcl.protocol.sweep import run_grid

    chosen = run_config(**options)
    runner = run_grid if chosen.is_grid else run_protocol
    result = runner(chosen, reporter=reporter, overwrite=overwrite, given=options)  # --pretrained: checked against
    out = Path(result.out)
    if chosen.is_grid:
        return RunResult(out, pd.DataFrame(result.rows), pd.DataFrame(result.unit_rows),
                         {p.name: p for p in out.glob("grid.*")}, result)
    files = {p.name: p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    return RunResult(out, pd.DataFrame(result.summary), pd.DataFrame([{k: v for k, v in r.items() if k != "history"}
                                                                      for r in result.rows]), files, result)


def tune(space: dict[str, Any], *, trials: int, reporter: Reporter | None = None, storage: str | None = None,
         study_name: str | None = None, score: str = "knn", pruner: Any = "median", timeout: float | None = None,
         **options: Any):
    """Search `space` (the `[space]` table of `ecgcl tune`, as a dict) around the run options `options` with
    `trials` more Optuna trials, each scored on validation records only; `out=` the tuning folder. `pruner` is
    median, hyperband, none or an `optuna.pruners.BasePruner`; after `timeout` seconds no trial starts.
    Returns a `ecgcl.tuning.TuneResult`."""
    from ecgcl.tuning import tune as _tune

    config = run_config(**options)
    return _tune(config, space, trials=trials, storage=storage, study_name=study_name, score=score, pruner=pruner,
                 out=config.out, reporter=reporter, timeout=timeout)


def show(store: ECGStore | str | os.PathLike, records: str | list[str] | None = None, *, task: str | None = None,
         class_name: str | None = None, n: int | None = None, random: int | None = None, seed: int | None = None,
         out: str | os.PathLike = "sheet.png", dpi: int = 150) -> list[Sheet]:
    """Draw records of a store (`"sample"`: the embedded one) as standard 12-lead sheets (`ecgcl show`): the
    `records` ids (a list or `"12,40"`), or `n` records of `class_name` in `task`, or `random` records drawn with
    `seed`; `out` a .png/.svg/.pdf file or a folder. Returns the `ecgcl.data.show.Sheet`s written (file, record,
    pixel size, panel boxes)."""
    from ecgcl.data.show import show as _show

    return _show(store, records=records, task=task, class_name=class_name, n=n, random=random, seed=seed, out=out,
                 dpi=dpi)


def preview(store: ECGStore | str | os.PathLike, record: str, *, aug: str | None = None,
            objective: str | None = None, seed: int = 0, epoch: int = 1, checkpoint: str | None = None,
            out: str | os.PathLike = "preview.png", dpi: int = 150):
    """`ecgcl show --aug`: draw one record and what `objective` trains on with `aug`, as the first batch of
    epoch `epoch` of a pretraining run with `seed` draws it (with a masked objective's `checkpoint`, its
    reconstruction of the hidden patches). Returns the `ecgcl.protocol.preview.Preview` (file, tensors drawn)."""
    from ecgcl.protocol.preview import preview as _preview

    return _preview(store, record, aug=aug, objective=objective, seed=seed, epoch=epoch, checkpoint=checkpoint,
                    out=out, dpi=dpi)


def explain(checkpoint: str | os.PathLike, data: str | os.PathLike, *, records: str | list[str],
            out: str | os.PathLike = "explain", class_name: str | None = None, window_s: float = 0.5,
            steps: int = 32, seed: int = 0, reporter: Reporter | None = None):
    """`ecgcl explain`: attributions of a fine-tuned classifier (Integrated Gradients with two baselines,
    occlusion) for `records` of store `data`, with their sanity checks, written to `out`; needs
    `ecgcl[explain]`. Returns the `ecgcl.protocol.explain.Explanation`s."""
    from ecgcl.protocol.explain import explain as _explain

    return _explain(checkpoint, data, records=records, out=out, class_name=class_name, window_s=window_s,
                    steps=steps, seed=seed, reporter=reporter)


def list_components(kind: str | None = None) -> list[dict[str, Any]]:
    """Every registered component (of one `kind`), as `ecgcl list-plugins --json` lists them."""
    from ecgcl.manager import get_registry
    from ecgcl.registry import KINDS

    if kind is not None and kind not in KINDS:
        raise EcgclError(f"kind {kind!r} is not one of {', '.join(KINDS)}{did_you_mean(kind, list(KINDS))}")
    return [component.as_dict() for component in get_registry().components(kind)]


__all__ = ["PretrainResult", "PretrainedEncoder", "RunResult", "explain", "ingest", "list_components",
           "load_encoder", "open_store", "preview", "pretrain", "run", "run_config", "show", "targets"]
