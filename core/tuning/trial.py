"""One trial of `ecgcl tune`: pretrain the trial's config and score it on validation records only.

For each repeat (seed = config.seed + repeat) the trial draws the protocol's patient split, pretrains on the pool
that holds no validation or test patient, and reads the score monitor (k-NN or probe AUROC on validation records)
of the epoch `pretrain.pt` keeps. Every epoch's figure goes to Optuna (`trial.report`), so a pruner can stop an
unpromising trial early (Li et al., "Hyperband", JMLR 2018; the median rule of Golovin et al., "Google Vizier",
KDD 2017). Test records are never read.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ecgcl.config import RunConfig
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter

SCORES = ("knn", "probe")  # the validation monitors a trial may be scored by


def scoring_config(config: RunConfig, score: str) -> RunConfig:
    """`config` with the score monitor on and every monitor run after each epoch (what pruning reads)."""
    if score not in SCORES:
        raise EcgclError(f"--score must be one of {', '.join(SCORES)}, not {score!r}")
    if config.pretrain_epochs < 1:
        raise EcgclError("ecgcl tune scores pretraining: --pretrain-epochs must be at least 1")
    specs = [s for s in config.monitors if s != "none"]
    named = {s.partition(":")[0].strip() for s in specs}
    if score not in named and not (score == "knn" and "auto" in named):
        specs.append(score)
    return dataclasses.replace(config, monitors=specs, monitor_every="1")


def score_trial(config: RunConfig, *, registry=None, trial=None, folder: str | Path,
                reporter: Reporter | None = None, score: str = "knn") -> float:
    """The mean over `config.repeats` of the `score` figure of the kept pretraining epoch; raises
    `optuna.TrialPruned` when `trial`'s pruner stops it after an epoch, and is -inf when pretraining diverges
    (a NaN/inf loss: the sampler learns to avoid the region, and the study goes on)."""
    from ecgcl.engine.device import seed_everything
    from ecgcl.engine.guards import NonFiniteTraining, check_pretraining_batch_size
    from ecgcl.protocol.runner import draw_repeat_split, prepare, run_pretraining
    from ecgcl.protocol.splits import pretraining_pool

    config = scoring_config(config, score)
    check_pretraining_batch_size(config.batch_size)
    epochs, figures = config.pretrain_epochs, []
    for repeat in range(config.repeats):
        seed = config.seed + repeat
        seed_everything(seed)
        exp = prepare(config, registry=registry, reporter=reporter)
        exp.repeated = True
        exp.watch(labelled=True)
        split = draw_repeat_split(exp, repeat)
        pool = pretraining_pool(exp.store.group_codes, split)
        unit = {"repeat": repeat}
        try:
            _, history = run_pretraining(exp, pool, Path(folder) / f"repeat_{repeat + 1}", seed, unit=unit,
                                         split=split, on_epoch_end=_pruning_hook(trial, score, repeat * epochs))
        except NonFiniteTraining as error:  # a diverging config is the worst score, not a crashed study
            (reporter or Reporter()).warning(f"trial diverged, scored -inf: {error}")
            if trial is not None:
                trial.set_user_attr("diverged", str(error))
            return -math.inf
        figures.append(kept_figure(history, exp.chosen[exp.unit_name(unit, "pretrain")]["epoch"], score))
    return float(sum(figures) / len(figures))


def kept_figure(history: list[dict[str, Any]], epoch: int, score: str) -> float:
    """The `score` figure of the history record of `epoch` (NaN when that epoch has none)."""
    record = next((r for r in history if r.get("epoch") == epoch), {})
    value = record.get(score)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _pruning_hook(trial, score: str, offset: int):
    """An epoch callback reporting the score figure to `trial` at step offset + epoch and pruning on request."""

    def hook(stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        if trial is None or stage != "pretrain":
            return
        value = record.get(score)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        trial.report(float(value), step=offset + epoch)
        if trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"pruned after pretraining epoch {epoch} ({score} = {value:.4f})")

    return hook
