"""Single runs: one pretraining or one fine-tuning on one patient split (what `ecgcl pretrain` and
`ecgcl finetune` run), and one evaluation of a fine-tuned checkpoint (`ecgcl evaluate`).

Pretraining and fine-tuning use the stages of the repeated protocol (`run_pretraining`, `run_finetuning` in `ecgcl.protocol.runner`)
on repeat 0 of the config's seed, so `pretrain` -> `finetune` holds out exactly the patients `ecgcl run`
holds out in its first repeat.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgcl.config import RunConfig, option_name
from ecgcl.errors import EcgclError
from ecgcl.locks import locks_results_folder
from ecgcl.methods import method_for
from ecgcl.protocol.runner import Reporter

Progress = Callable[[], AbstractContextManager[Reporter]]


def discard_unfinished(out: Path) -> None:
    """`--overwrite` for pretrain and finetune: drop the resume states an earlier invocation left in `out`."""
    if out.is_dir():
        for stale in out.glob("*.last.pt"):
            stale.unlink()


@dataclass
class PretrainingRun:
    """One process's account of a pretraining run (`ecgcl.api.PretrainResult` is what the Python API returns):
    history, checkpoint, and where it ran (`is_main` is False on the other ranks of a multi-process run)."""

    history: list[dict[str, Any]]
    checkpoint: Path
    is_main: bool
    world_size: int
    backend: str
    device: Any
    notes: list[str] = field(default_factory=list)
    chosen: dict[str, Any] | None = None  # the epoch pretrain.pt keeps: {epoch, by, value}
    collapses: list[str] = field(default_factory=list)  # when the monitors saw the representation collapse


def check_pretrain_config(config: RunConfig) -> None:
    """What `ecgcl pretrain` refuses before anything starts (before torchrun starts its processes, too)."""
    from ecgcl.engine.guards import check_pretraining_batch_size

    config.require_single("pretrain")
    if config.pretrain_epochs < 1:
        raise EcgclError("--pretrain-epochs must be at least 1 for `ecgcl pretrain`")
    check_pretraining_batch_size(config.batch_size)


@locks_results_folder
def pretrain_once(config: RunConfig, *, all_records: bool = False, overwrite: bool = False, options=None,
                  progress: Progress | None = None, registry=None) -> PretrainingRun:
    """Self-supervised pretraining (the config's --objective) on a store, writing `OUT/pretrain.pt` (and `OUT/config.json`).

    Records of the validation and test patients of `finetune_once`'s split are held out unless
    `all_records` (a store without labels for the task is used whole). Runs under torch.distributed when
    torchrun started this process; only rank 0 writes files and calls `progress` for its reporter.
    """
    from ecgcl.distributed import barrier
    from ecgcl.engine.session import distributed_session
    from ecgcl.engine.device import seed_everything
    from ecgcl.engine.guards import check_global_batch
    from ecgcl.engine.checkpoint import KEPT
    from ecgcl.engine.speed import TrainOptions, training_options
    from ecgcl.files import make_folders, writing
    from ecgcl.protocol.runner import finetune_split, prepare, run_pretraining
    from ecgcl.protocol.curves import CURVES_FILE, plot_training_curves, run_artifacts
    from ecgcl.protocol.splits import pretraining_pool
    from ecgcl.protocol.watching import HISTORY_FILE, build_trackers, read_history, run_listeners

    check_pretrain_config(config)
    out = Path(config.out)
    with distributed_session(config.device) as session:
        check_global_batch(config.batch_size, session.world_size)
        reporting = progress() if (session.is_main and progress is not None) else nullcontext(Reporter())
        with reporting as reporter:
            exp = prepare(config, registry=registry, reporter=reporter, need_labels=False)
            exp.device = session.device
            held_out = not all_records and exp.targets is not None
            exp.watch(labelled=held_out, why_unlabelled=_why_unlabelled(config, exp, all_records))
            trackers = build_trackers(config, exp.registry) if session.is_main else []
            split = finetune_split(exp) if held_out else None
            pool = np.arange(len(exp.store)) if split is None else pretraining_pool(exp.store.group_codes, split)
            if session.is_main:
                if overwrite:
                    discard_unfinished(out)
                    (out / HISTORY_FILE).unlink(missing_ok=True)
                make_folders(out, "results folder", kept=KEPT)
                with writing(out / "config.json", "run configuration", kept=KEPT):  # RunConfig.save writes it
                    config.save(out)
                exp.reporter = run_listeners(exp.reporter, out, trackers)
                exp.reporter.run_started(out, config.to_dict())
                if split is not None and exp.monitors:
                    exp.reporter.message(f"monitors {', '.join(exp.monitors)}: {len(split.val)} validation records "
                                         f"of task {config.task} held out by patient (pretraining never sees them)")
            barrier()  # no rank looks for a resume file before rank 0 has discarded stale ones
            seed_everything(config.seed)
            with training_options(options or TrainOptions()):
                _, history = run_pretraining(exp, pool, out, config.seed, unit={}, split=split)
            if session.is_main:
                plot_training_curves(out / CURVES_FILE, read_history(out), exp.chosen)
                exp.reporter.run_finished(run_artifacts(out))
            barrier()
        return PretrainingRun(history, out / "pretrain.pt", session.is_main, session.world_size, session.backend,
                              session.device, chosen=next(iter(exp.chosen.values()), None),
                              collapses=list(exp.collapses))


def _why_unlabelled(config: RunConfig, exp, all_records: bool) -> str:
    """Why `ecgcl pretrain` has no validation records for label-based monitors."""
    if all_records:
        return "--all-records pretrains on every record, so none is held out for validation"
    return f"store {exp.store.path} has no labels for --task {config.task}"


@dataclass
class FinetuneResult:
    """The result row of one fine-tuning (metrics, best epoch, checkpoint), its method and any notes."""

    row: dict[str, Any]
    method: str
    notes: list[str] = field(default_factory=list)


@locks_results_folder
def finetune_once(config: RunConfig, *, checkpoint: str | None = None, given: dict[str, Any] | None = None,
                  mode: str = "finetune", label_fraction: float = 1.0, overwrite: bool = False, options=None,
                  reporter: Reporter | None = None, registry=None, missing_leads: str | None = None) -> FinetuneResult:
    """Fine-tune (or linear-probe) an encoder on one patient split, keep the best validation epoch and
    evaluate it on test; writes `OUT/config.json`, `OUT/METHOD.best.pt` and `OUT/metrics.json`.

    With a pretrained `checkpoint`, the model (encoder, its options, embedding size, input) comes from it;
    `given` holds the options the user set, which must not contradict it. The store may hold a subset of
    the checkpoint's leads: `missing_leads` (zero | slice, default by `ecgcl.engine.lead_mapping`) says what
    the encoder gets for the others; the choice is recorded in the checkpoint and the result row. A store of
    another rate or length is resampled / padded to the checkpoint's (`ecgcl.data.adapt`), with one note.
    """
    from ecgcl.engine.device import seed_everything
    from ecgcl.engine.lead_mapping import lead_plan_for
    from ecgcl.engine.speed import TrainOptions, training_options
    from ecgcl.engine.checkpoint import KEPT
    from ecgcl.files import make_folders, write_json, writing
    from ecgcl.protocol.pretrained import adopt_store, checkpoint_model
    from ecgcl.protocol.runner import check_pretraining_excludes, finetune_split, prepare, run_finetuning
    from ecgcl.protocol.splits import check_both_classes, label_fraction_subset

    if not 0 < label_fraction <= 1:
        raise EcgclError(f"--label-fraction must be in (0, 1], got {label_fraction}")
    encoder_state, meta, notes = None, None, []
    if missing_leads and not checkpoint:
        raise EcgclError("--missing-leads maps a store onto a pretrained encoder's leads; it needs --checkpoint")
    if checkpoint:
        encoder_state, meta = checkpoint_model(checkpoint, given or {}, registry)
        config = dataclasses.replace(config, encoder=meta["encoder"], encoder_args=dict(meta["encoder_args"]),
                                     embed_dim=meta["embed_dim"], input=meta["representation"])
    out = Path(config.out)
    if overwrite:
        discard_unfinished(out)
    exp = prepare(config, registry=registry, reporter=reporter, pretraining=False)
    pretrained: dict[str, Any] = {}
    if meta is not None:
        adopt_store(exp, meta, source=f"checkpoint {checkpoint}", notes=notes)
        exp.lead_plan = lead_plan_for(meta, exp.store, missing_leads, source=f"checkpoint {checkpoint}",
                                      registry=exp.registry)
        exp.window = meta["window"]
        pretrained = {"pretrain_aug": meta.get("aug"), "missing_leads": exp.lead_plan.policy}
        if exp.lead_plan.missing:
            note = (f"leads {','.join(exp.lead_plan.missing)} of the checkpoint are not in the store: "
                    f"--missing-leads {exp.lead_plan.policy}")
            notes.append(note)
            exp.reporter.message(note)
    targets, codes = exp.targets, exp.store.group_codes
    seed_everything(config.seed)
    split = finetune_split(exp)
    if meta is not None:
        note = check_pretraining_excludes(meta, exp.store, split, source=f"checkpoint {checkpoint}")
        if note:
            notes.append(note)
            exp.reporter.message(f"Note: {note}")
    check_both_classes(targets.y, split.parts(), repeat=1, task=config.task, class_names=targets.class_names)
    train = label_fraction_subset(split.train, codes, targets.stratify_key(), label_fraction, config.seed)
    make_folders(out, "results folder", kept=KEPT)
    with writing(out / "config.json", "run configuration", kept=KEPT):  # RunConfig.save writes the file itself
        config.save(out)
    method = method_for(mode, pretrained=checkpoint is not None)
    with training_options(options or TrainOptions()):
        row = run_finetuning(exp, method=method, encoder_state=encoder_state, train_rows=train, val_rows=split.val,
                             test_rows=split.test, folder=out, seed=config.seed,
                             unit={"repeat": 0, "seed": config.seed, "label_fraction": label_fraction,
                                   "method": method, **pretrained})
    write_json(out / "metrics.json", row, what="results table", kept=KEPT)
    (out / f"{method}.last.pt").unlink(missing_ok=True)  # finished: the best checkpoint remains
    return FinetuneResult(row, method, notes)


def evaluate_once(checkpoint: str | os.PathLike, data: str | os.PathLike, *, split_file: str | None = None,
                  part: str = "test", device: str = "auto", batch_size: int = 64, all_records: bool = False,
                  missing_leads: str | None = None, robustness: bool = False, robustness_extra: Sequence[str] = (),
                  seed: int = 0, out: str | os.PathLike = "robustness", registry=None) -> dict[str, Any]:
    """`ecgcl evaluate`: the metrics of a fine-tuned checkpoint on a store's labelled records (see
    `ecgcl.engine.evaluate.open_evaluation` for which records), and with `robustness` the robustness report
    written to `out`, returned under `robustness` (summary, skipped conditions, files)."""
    from ecgcl.engine.evaluate import open_evaluation
    from ecgcl.protocol.splits import read_split_file

    if robustness_extra and not robustness:
        raise EcgclError("--robustness-extra adds conditions to the robustness report; add --robustness")
    record_ids = read_split_file(split_file, part) if split_file else None
    evaluation = open_evaluation(checkpoint, data, registry=registry, device=device, batch_size=batch_size,
                                 record_ids=record_ids, all_records=all_records, missing_leads=missing_leads)
    result = {**evaluation.info(), **evaluation.metrics()}
    if robustness:
        from ecgcl.robustness.report import evaluation_robustness, summarise_robustness, write_robustness

        rows, skipped = evaluation_robustness(evaluation, extra=robustness_extra, seed=seed)
        summary = summarise_robustness(rows)
        files = write_robustness(Path(out), rows, summary, skipped=skipped, seed=seed)
        result["robustness"] = {"summary": summary, "skipped": skipped, "files": [str(f) for f in files]}
    return result
