"""The repeated patient-level protocol behind `ecgcl run`.

For each of K repeats (seed = config.seed + repeat): split labelled patients into train / validation / test
(stratified by label); pretrain on every record whose patient is in neither validation nor test; for each
label fraction, train each method on that fraction of the train patients, keep the epoch with the best
validation AUROC, and evaluate it once on test. Methods: the pretrained encoder fine-tuned end to end and
as a frozen linear probe, a randomly initialised frozen encoder with a linear probe, and supervised
training from scratch (random init, end to end), so every table shows what pretraining adds.

Every finished unit (pretraining of a repeat, one method at one fraction) leaves a file in the results
folder; rerunning into the same folder skips finished units and resumes unfinished ones after their last
finished epoch.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ecgcl.config import RunConfig
from ecgcl.errors import EcgclError
from ecgcl.locks import locks_results_folder
from ecgcl.methods import method as declared
from ecgcl.reporting import Reporter

if TYPE_CHECKING:
    from ecgcl.engine.settings import Checkpoints, TrainingContext


@dataclass
class Experiment:
    """What every stage of a run shares: config, store, task targets, components and the device."""

    config: RunConfig
    store: Any
    targets: Any
    registry: Any
    device: Any
    augmentation: Any
    window: int
    reporter: Reporter = field(default_factory=Reporter)
    lead_plan: Any = None  # a `LeadPlan` when a pretrained encoder meets a store with other leads
    context: Any = None  # the `RuntimeContext` of the store and device, passed to component factories by name
    aug_spec: str = "none"  # --aug, or the objective's own default when --aug is not given
    pretraining: bool = True  # whether this experiment pretrains (the objective is checked only then)
    announced: bool = False  # whether the augmentation as built was reported (once, when pretraining starts)
    monitors: dict[str, Any] = field(default_factory=dict)  # the pretraining monitors (see `watch`)
    selection: Any = None  # the `Selection` of --pretrain-select best:MONITOR; None keeps the last epoch
    collapses: list[str] = field(default_factory=list)  # units whose representation collapsed, and when
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)  # pretraining unit -> the epoch pretrain.pt keeps
    repeated: bool = False  # part of `ecgcl run`'s repeats (units are named by repeat), not a single pretrain/finetune

    def watch(self, *, labelled: bool, why_unlabelled: str = "") -> None:
        """Resolve --monitor and --pretrain-select for this experiment (one-line errors before anything is
        written); `labelled`: label-based monitors have validation records to score."""
        from ecgcl.protocol.watching import resolve_monitors

        two_views = bool(self.objective_component.factory_attribute("two_views"))
        self.monitors, self.selection = resolve_monitors(self.config, self.registry, labelled=labelled,
                                                         two_views=two_views, why_unlabelled=why_unlabelled)

    def unit_name(self, unit: dict[str, Any], stage: str) -> str:
        """How listeners and log lines name a unit: 'repeat 1/5 · labels 0.1 · supervised', 'repeat 1/5 · pretrain'."""
        repeated = self.repeated and "repeat" in unit and self.config.repeats > 1
        parts = [f"repeat {unit['repeat'] + 1}/{self.config.repeats}"] if repeated else []
        if "label_fraction" in unit and len(self.config.label_fractions) > 1:
            parts.append(f"labels {unit['label_fraction']:g}")
        return " · ".join([*parts, stage])

    @property
    def in_leads(self) -> int:
        """The leads the encoder takes: the store's, or those of the lead plan."""
        if self.lead_plan is not None:
            return len(self.lead_plan.encoder_leads)
        return int(self.store.signals.shape[1])

    def fingerprint(self, **unit: Any) -> dict[str, Any]:
        """The settings a saved unit depends on (anything else may change between resumptions)."""
        return {"config": resumable_settings(self.config), "store": self.store.hash, **unit}

    def meta(self, **extra: Any) -> dict[str, Any]:
        """Checkpoint metadata: how to rebuild the model and which data it saw."""
        from ecgcl.engine.checkpoint import store_meta

        c = self.config
        return {"encoder": c.encoder, "encoder_args": dict(c.encoder_args), "embed_dim": c.embed_dim,
                "window": self.window, "representation": c.input, "task": c.task if self.targets else None,
                "class_names": list(self.targets.class_names) if self.targets else [],
                "num_outputs": self.targets.num_outputs if self.targets else 0,
                "target_kind": self.targets.kind if self.targets else None,
                "dropout": c.dropout, "objective": c.objective, "aug": self.aug_spec,
                "loss": c.loss if self.objective_component.factory_attribute("takes_loss") else None,
                "loss_args": dict(c.loss_args),
                **store_meta(self.store), **(self.lead_plan.describe() if self.lead_plan else {}), **extra}

    def training_context(self, checkpoints: Checkpoints,
                         on_epoch_end: Callable[[str, int, int, dict], None] | None = None, *, unit: str = "",
                         monitors=None, select=None) -> TrainingContext:
        """The training loops' `TrainingContext` on this experiment's device, writing `checkpoints`; each finished
        epoch of `unit` goes to the reporter (every --log-every steps too), then to `on_epoch_end`."""
        from ecgcl.engine.settings import TrainingContext

        return TrainingContext(self.device, checkpoints, on_epoch_end=on_epoch_end, listener=self.reporter, unit=unit,
                               log_every=self.config.log_every, monitors=monitors, select=select)

    def new_encoder(self, seed: int):
        """A freshly initialised encoder; the same seed gives the same weights."""
        import torch

        from ecgcl.engine.model import build_encoder

        torch.manual_seed(seed)
        return build_encoder(self.registry, self.config.encoder, in_leads=self.in_leads, window=self.window,
                             representation=self.config.input, embed_dim=self.config.embed_dim,
                             encoder_args=self.config.encoder_args, context=self.context)

    def new_loss(self):
        """The contrastive loss with the user's `--loss-arg` options and the runtime values it names."""
        from ecgcl.context import create_component

        return create_component(self.registry, "loss", self.config.loss, dict(self.config.loss_args), self.context,
                                where="--loss-arg {key}")

    @property
    def objective_component(self):
        """The registry entry of the chosen objective."""
        return objective_entry(self.registry, self.config.objective)

    def new_objective(self, encoder):
        """The pretraining objective around `encoder`, with the user's options and the runtime values it names
        (`encoder`, `embed_dim`, `augmentation`, `loss`, `projection_dim`, `fs`, `leads`, `length` = view length)."""
        from ecgcl.compose import build_component

        takes_loss = self.objective_component.factory_attribute("takes_loss")
        context = self.context.replace(encoder=encoder, embed_dim=encoder.embed_dim, augmentation=self.augmentation,
                                       loss=self.new_loss() if takes_loss else None,
                                       projection_dim=self.config.projection_dim, length=self.window)
        return build_component(self.registry, "objective", self.config.objective, context=context,
                               where="--objective ...{key}=...")

    def components(self) -> list:
        """The registry entries of the chosen encoder, objective, loss and augmentation parts (for error messages)."""
        return [self.registry.get("encoder", self.config.encoder), self.objective_component,
                self.registry.get("loss", self.config.loss), *getattr(self.augmentation, "components", ())]


def objective_entry(registry, spec: str):
    """The registry entry an `--objective` spec names (did-you-mean on unknown names)."""
    from ecgcl.compose import parse_part

    return registry.get("objective", parse_part(spec, "objective", raw=True)[0])


def resumable_settings(config: RunConfig) -> dict[str, Any]:
    """The settings saved work depends on; repeats, label fractions, methods, device and paths may change."""
    return {k: v for k, v in config.to_dict().items()
            if k not in ("out", "device", "repeats", "label_fractions", "methods", "data", "robustness", "track", "log_every",
                         "robustness_extra")}


def check_results_folder(out: Path, config: RunConfig, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to reuse a results folder whose saved run used other settings (before anything is written);
    settings named in `ignore` may differ."""
    import json

    saved_path = out / "config.json"
    if not saved_path.is_file():
        return
    try:
        saved = {**RunConfig().to_dict(), **json.loads(saved_path.read_text())}
        saved_settings = resumable_settings(RunConfig(**saved))
    except (ValueError, TypeError, EcgclError):
        raise EcgclError(f"{saved_path} is not a readable ecgcl config; use another --out or pass --overwrite") from None
    differ = sorted(k for k, v in resumable_settings(config).items() if saved_settings.get(k) != v and k not in ignore)
    if differ:
        raise EcgclError(f"results folder {out} holds a run with other settings ({', '.join(differ)}); use another "
                         "--out, --resume to continue it, or --overwrite to start again")


def resolve_store_path(data: str | None) -> Path:
    """The store to use: the given folder, or the PTB-XL sample shipped inside the package."""
    if data:
        return Path(data)
    try:
        from ecgcl.data.sample import sample_store_path
    except ImportError as error:
        raise EcgclError("no --data given and this installation has no embedded sample store; pass --data STORE "
                         "(create one with `ecgcl ingest`)") from error
    return Path(sample_store_path())


DEFAULT_LOSS = "ntxent"  # --loss when not given; any other value needs an objective that takes a loss


def prepare(config: RunConfig, *, registry=None, reporter: Reporter | None = None,
            need_labels: bool = True, pretraining: bool = True) -> Experiment:
    """Open the store, resolve the task and check every component name before any training starts.

    With `need_labels=False` (pretraining alone) a store without labels for the task is fine: `targets` is None.
    With `pretraining` the objective is built and run for one step on real records (see `check_components`).
    """
    from ecgcl.compose import parse_augmentations
    from ecgcl.context import RuntimeContext
    from ecgcl.data.store import open_store
    from ecgcl.tasks import task_targets
    from ecgcl.engine.device import select_device

    if config.is_grid:
        raise EcgclError("one experiment takes one --objective, --aug and --encoder; `ecgcl run` splits a grid into cells")
    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    store = open_store(resolve_store_path(config.data))
    # without need_labels, a store the task finds no labels in gives None: an unlabelled archive pretrains fine
    targets = task_targets(config.task, store.metadata, registry=registry, source=f"store {store.path}",
                           require_labels=need_labels)
    device = select_device(config.device)
    registry.get("encoder", config.encoder)  # unknown names: the registry's "did you mean" error
    registry.get("loss", config.loss)
    objective = objective_entry(registry, config.objective)
    if not objective.factory_attribute("takes_loss") and (config.loss != DEFAULT_LOSS or config.loss_args):
        raise EcgclError(f"--loss {config.loss}{' / --loss-arg' if config.loss_args else ''}: objective "
                         f"{objective.name!r} takes no contrastive loss (it has its own); --loss is for "
                         "--objective contrastive")
    aug_spec = config.aug if config.aug is not None else objective.factory_attribute("default_aug") or "none"
    context = RuntimeContext.of_store(store, device)
    augmentation = parse_augmentations(aug_spec, registry, context)
    experiment = Experiment(config, store, targets, registry, device, augmentation, 0, reporter or Reporter(),
                            context=context, aug_spec=aug_spec, pretraining=pretraining)
    experiment.window = check_components(experiment)
    if config.robustness:  # a bad --robustness-extra fails now, not after training
        from ecgcl.robustness.conditions import robustness_grid
        from ecgcl.robustness.perturb import build_perturbation

        for condition in robustness_grid(store.leads, store.fs, config.robustness_extra)[0]:
            build_perturbation(condition, registry=registry, store_leads=store.leads, fs=store.fs)
    return experiment


def check_components(exp: Experiment) -> int:
    """Run each chosen component once on a few of the store's records (see `ecgcl.contracts`) before any
    training; returns the length of the augmented views (CLOCS segments are shorter than the record). When the
    experiment pretrains, the objective runs one training step on those records: a finite scalar loss whose
    gradients reach the encoder."""
    import torch

    from ecgcl.contracts import blame_plugins, check_augmentation, check_encoder, check_loss, check_objective
    from ecgcl.engine.inputs import represent, represented_length

    c = exp.config
    rows = np.arange(min(4, len(exp.store))) if len(exp.store) >= 2 else np.zeros(2, dtype=int)
    dummy = torch.as_tensor(np.asarray(exp.store.signals[rows]), dtype=torch.float32, device=exp.device)
    generator = torch.Generator(device=exp.device).manual_seed(0)
    window = check_augmentation(exp.augmentation, dummy, generator)
    if represented_length(window, c.input) < 2:
        raise EcgclError(f"views of {window} samples are too short for --input {c.input}")
    exp.window = window
    encoder = exp.new_encoder(0)
    check_encoder(encoder.to(exp.device), exp.registry.get("encoder", c.encoder),
                  represent(dummy[..., :window], c.input))
    objective = exp.objective_component
    if objective.factory_attribute("takes_loss"):
        check_loss(exp.new_loss().to(exp.device), exp.registry.get("loss", c.loss), len(rows), c.projection_dim,
                   exp.device)
    if exp.pretraining:
        from ecgcl.engine.pretraining import PretrainStep, check_objective_fits

        needs = objective.factory_attribute("needs")
        check_objective_fits(objective.name, needs, c.encoder, encoder, encoders_that_fit(exp.registry, needs))
        step = PretrainStep(encoder, exp.new_objective(encoder), window=window, representation=c.input).to(exp.device)
        patients = torch.arange(len(rows), device=exp.device)
        with blame_plugins(exp.components()):
            check_objective(step, objective, encoder, dummy, patients, torch.Generator(device=exp.device).manual_seed(0))
    return window


def encoders_that_fit(registry, needs: str | None) -> list[str]:
    """The registered encoders whose class exposes what an objective needs (`sequence` or the token API)."""
    from ecgcl.engine.pretraining import NEEDS

    if needs is None:
        return []
    return [e.name for e in registry.components("encoder") if all(hasattr(e.factory, a) for a in NEEDS[needs])]


def _blaming_plugins(stage: Callable) -> Callable:
    """Run a training stage so that an exception from a third-party component names its plugin (one line)."""
    from functools import wraps

    @wraps(stage)
    def run(exp: Experiment, *args: Any, **kwargs: Any):
        from ecgcl.contracts import blame_plugins

        with blame_plugins(exp.components()):
            return stage(exp, *args, **kwargs)

    return run


@_blaming_plugins
def run_pretraining(exp: Experiment, rows: np.ndarray, folder: Path, seed: int, *, unit: dict[str, Any],
                    on_epoch_end=None, split=None):
    """Pretrain a fresh encoder on `rows`; writes `pretrain.last.pt` (resume), `pretrain.best.pt` (the epoch
    --pretrain-select best:MONITOR keeps so far) and `pretrain.pt` (the chosen epoch's encoder). The experiment's
    monitors run on fixed samples of `rows` and, with a labelled `split`, of its training and validation records."""
    from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint
    from ecgcl.engine.device import derive_seed
    from ecgcl.engine.loops import pretrain
    from ecgcl.engine.selection import last_epoch
    from ecgcl.engine.settings import Checkpoints, PretrainSettings

    c = exp.config
    encoder = exp.new_encoder(derive_seed(seed, "init"))
    objective = exp.new_objective(encoder)  # right after the encoder: its heads draw from the same seeded stream
    patient_ids = exp.store.metadata["patient_id"].to_numpy(dtype=str)  # fixed-width: setdiff1d sorts, no object loop
    heldout = np.setdiff1d(np.unique(patient_ids), patient_ids[rows])
    meta = exp.meta(stage="pretrain", pool_records=int(len(rows)), heldout_patients=heldout.tolist(), **unit)
    if not exp.announced and len(exp.augmentation):  # every option, the runtime-provided ones (fs, ...) too
        exp.reporter.message(f"objective {c.objective}; augmentation as built: {exp.augmentation.describe()}")
        exp.announced = True
    name = exp.unit_name(unit, "pretrain")
    exp.reporter.stage(f"{name} ({len(rows)} records)", c.pretrain_epochs)
    settings = PretrainSettings(epochs=c.pretrain_epochs, batch_size=c.batch_size, lr=c.lr,
                                weight_decay=c.weight_decay, seed=derive_seed(seed, "pretrain"), window=exp.window,
                                representation=c.input)
    best_path = folder / "pretrain.best.pt" if exp.selection is not None else None
    checkpoints = Checkpoints(last_path=folder / "pretrain.last.pt", best_path=best_path, meta=meta,
                              fingerprint=exp.fingerprint(stage="pretrain", **unit))
    context = exp.training_context(checkpoints, _collapse_watch(exp, name, encoder, on_epoch_end), unit=name,
                                   monitors=epoch_monitors(exp, rows, split, seed), select=exp.selection)
    with labelled(_label(unit)):
        history = pretrain(encoder=encoder, objective=objective, store=exp.store, rows=rows, settings=settings,
                           context=context)
    chosen = exp.selection.chosen(history) if exp.selection is not None else last_epoch(history)
    if best_path is not None and chosen["by"] == exp.selection.spec and chosen["epoch"] != history[-1]["epoch"]:
        encoder.load_state_dict(load_checkpoint(best_path)["encoder"])
    meta = {**meta, "chosen_epoch": chosen["epoch"], "chosen_by": chosen["by"], "chosen_value": chosen["value"]}
    save_checkpoint(folder / "pretrain.pt", {"kind": "encoder", "meta": meta, "history": history,
                                             "encoder": encoder.state_dict()})
    exp.chosen[name] = chosen
    if chosen["by"] != "last":
        exp.reporter.message(f"{name}: pretrain.pt keeps epoch {chosen['epoch']} of {len(history)} ({chosen['by']}"
                             + (f" = {chosen['value']:.4f})" if chosen["value"] is not None else ")"))
    return encoder, history


def epoch_monitors(exp: Experiment, rows: np.ndarray, split, seed: int):
    """The `EpochMonitors` of a pretraining on `rows` (None without monitors): fixed samples of the pool and,
    where the task has labels and `split` is given, of the split's training and validation records."""
    from ecgcl.engine.device import derive_seed
    from ecgcl.config import parse_every
    from ecgcl.engine.monitoring import EpochMonitors, MonitorRecords, auto_every

    if not exp.monitors:
        return None
    sample_seed = derive_seed(seed, "monitor") % 2**31
    labelled = split is not None and exp.targets is not None
    records = MonitorRecords.draw(rows, sample_seed, train=split.train if labelled else None,
                                  val=split.val if labelled else None, targets=exp.targets if labelled else None)
    every = parse_every(exp.config.monitor_every)
    if every is None:
        every = auto_every(records, len(rows))
        exp.reporter.message(f"monitors {', '.join(exp.monitors)} every {every} epoch{'s' if every > 1 else ''} "
                             "(--monitor-every auto: about 10% of pretraining time) and after the last")
    return EpochMonitors(exp.monitors, records, store=exp.store, every=every, window=exp.window,
                         representation=exp.config.input, batch_size=exp.config.batch_size, device=exp.device,
                         augmentation=exp.augmentation, seed=sample_seed)


def _collapse_watch(exp: Experiment, name: str, encoder, then=None):
    """An epoch callback that warns once per unit when the monitors show a collapsing representation (and keeps
    the note for the table caption), then calls `then`."""
    from ecgcl.engine.monitoring import collapse_note

    warned, ranks = [], []

    def watch(stage, epoch, epochs, record):
        note = collapse_note(record, int(encoder.embed_dim), ranks[-1] if ranks else None)
        if "rankme" in record:
            ranks.append(record["rankme"])
        if note and not warned:
            warned.append(note)
            exp.collapses.append(f"{name}, epoch {epoch}: {note}")
            exp.reporter.warning(f"{name} · epoch {epoch}: the representation is collapsing: {note}")
        if then is not None:
            then(stage, epoch, epochs, record)

    return watch


def draw_repeat_split(exp: Experiment, repeat: int):
    """The split of one repeat under the config's `--split` strategy (seed = config.seed + repeat)."""
    from ecgcl.protocol.strategies import draw_split
    from ecgcl.split_spec import parse_split

    c = exp.config
    return draw_split(parse_split(c.split, c.val_folds, c.test_folds), exp.store, exp.targets, repeat=repeat,
                      seed=c.seed + repeat, val_fraction=c.val_fraction, test_fraction=c.test_fraction)


@contextmanager
def labelled(where: str) -> Iterator[None]:
    """Prefix a diverged-training error with where in the run it happened (`repeat 2 · supervised · `)."""
    from ecgcl.engine.guards import NonFiniteTraining

    try:
        yield
    except NonFiniteTraining as error:
        raise error.within(where) from None


def finetune_split(exp: Experiment):
    """The patient split of `ecgcl finetune` (repeat 0 of the config's seed); `ecgcl pretrain` holds out its
    validation and test patients."""
    return draw_repeat_split(exp, 0)


def check_pretraining_excludes(meta: dict[str, Any], store, split, *, source: str) -> str | None:
    """Refuse a pretrained encoder that saw this split's validation or test patients (same store only).

    Returns a note when the checkpoint was pretrained on another store, where ecgcl cannot check patients.
    """
    if meta.get("manifest_hash") != store.hash or "heldout_patients" not in meta:
        return (f"{source} was pretrained on another store; ecgcl cannot check that it never saw this split's "
                "validation and test patients")
    patient_ids = store.metadata["patient_id"].to_numpy(dtype=str)
    evaluated = np.unique(patient_ids[np.concatenate([split.val, split.test])])
    seen = np.setdiff1d(evaluated, np.asarray(meta["heldout_patients"], dtype=str))
    if len(seen):
        raise EcgclError(
            f"{source} was pretrained on records of {len(seen)} of this split's validation/test patients; pretrain "
            "with the same --task, --seed, --split, --val-fraction/--test-fraction or --val-folds/--test-folds "
            "(and without --all-records)")
    return None


def _label(unit: dict[str, Any]) -> str:
    parts = []
    if "repeat" in unit:
        parts.append(f"repeat {unit['repeat'] + 1}")
    if "label_fraction" in unit:
        parts.append(f"labels {unit['label_fraction']:g}")
    if "method" in unit:
        parts.append(unit["method"])
    return " · ".join(parts) + (" · " if parts else "")


@_blaming_plugins
def run_finetuning(exp: Experiment, *, method: str, encoder_state: dict | None, train_rows: np.ndarray,
                   val_rows: np.ndarray, test_rows: np.ndarray, folder: Path, seed: int, unit: dict[str, Any],
                   on_epoch_end=None) -> dict[str, Any]:
    """Train one method, keep the best validation epoch, evaluate it once on test; returns the result row."""
    import torch

    from ecgcl.engine.device import derive_seed
    from ecgcl.engine.lead_mapping import slice_state
    from ecgcl.engine.inference import predict
    from ecgcl.engine.loops import fit_probe, train_classifier
    from ecgcl.engine.model import Classifier
    from ecgcl.engine.settings import Checkpoints, FinetuneSettings
    from ecgcl.engine.checkpoint import save_checkpoint
    from ecgcl.metrics import best_f1_thresholds, classification_metrics, per_class_metrics

    c = exp.config
    encoder = exp.new_encoder(derive_seed(seed, "init"))
    plan = exp.lead_plan
    if encoder_state is not None:
        if plan is not None and plan.policy == "slice":
            encoder_state = slice_state(encoder_state, encoder, plan, source="the pretrained encoder")
        encoder.load_state_dict(encoder_state)
    torch.manual_seed(derive_seed(seed, method, "head"))
    model = Classifier(encoder, exp.targets.num_outputs, window=exp.window, representation=c.input, dropout=c.dropout,
                       softmax=exp.targets.multiclass, lead_adapter=plan.adapter() if plan is not None else None)
    mode = declared(method).mode
    stem = folder / method
    exp.reporter.stage(f"{exp.unit_name(unit, method)} ({len(train_rows)} train records)",
                       1 if mode == "linear" else c.finetune_epochs)
    record_ids = exp.store.metadata["record_id"].astype(str).to_numpy()
    meta = exp.meta(stage="classifier", mode=mode, train_records=int(len(train_rows)),
                    test_record_ids=record_ids[test_rows].tolist(), **unit)
    data = {"model": model, "store": exp.store, "train_rows": train_rows, "val_rows": val_rows, "y": exp.targets.y}
    with labelled(_label(unit)):
        if mode == "linear":
            fit = fit_probe(**data, batch_size=c.batch_size, context=exp.training_context(
                Checkpoints(), on_epoch_end, unit=exp.unit_name(unit, method)))
            if fit["stopped"] == "max_iter":
                exp.reporter.message(f"{_label(unit)}the probe hit its iteration limit at C={fit['probe']['c']:g} "
                                     f"({fit['probe']['iterations']} solver iterations); its numbers are not converged")
        else:
            settings = FinetuneSettings(epochs=c.finetune_epochs, patience=c.patience, batch_size=c.batch_size,
                                        lr=c.finetune_lr, weight_decay=c.weight_decay, seed=derive_seed(seed, method))
            checkpoints = Checkpoints(last_path=stem.with_suffix(".last.pt"), best_path=stem.with_suffix(".best.pt"),
                                      meta=meta, fingerprint=exp.fingerprint(stage="classifier", **unit))
            fit = train_classifier(**data, settings=settings, context=exp.training_context(
                checkpoints, on_epoch_end, unit=exp.unit_name(unit, method)))
    exp.reporter.finished(ending_note(training_summary(fit)))
    threshold = best_f1_thresholds(exp.targets.y[val_rows], predict(model, exp.store, val_rows,
                                                                    batch_size=c.batch_size, device=exp.device))
    probe = {"probe": fit["probe"]} if "probe" in fit else {}
    save_checkpoint(stem.with_suffix(".best.pt"), {  # the best model, now with its validation threshold
        "kind": "classifier", "meta": {**meta, "threshold": threshold}, "epoch": fit["best_epoch"],
        "val_auroc": fit["best_val_auroc"], "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **probe})
    probs = predict(model, exp.store, test_rows, batch_size=c.batch_size, device=exp.device)
    y_test = exp.targets.y[test_rows]
    metrics = classification_metrics(y_test, probs, threshold)
    return {**unit, "train_records": int(len(train_rows)), "val_records": int(len(val_rows)),
            "test_records": int(len(test_rows)), **metrics, "threshold": threshold,
            "per_class": per_class_metrics(y_test, probs, exp.targets.class_names, threshold),
            **training_summary(fit), "best_val_auroc": fit["best_val_auroc"],
            "checkpoint": str(stem.with_suffix(".best.pt")), "history": fit["history"]}


def ending_note(row: dict[str, Any]) -> str:
    """How a unit ended (from its `training_summary` or result row), in a few words for a progress bar."""
    if row.get("probe_c") is not None:
        return f"probe {row['stopped']} at C={row['probe_c']:g}"
    return f"stopped: {row['stopped']}, best epoch {row['best_epoch']} of {row['epochs_run']}"


def training_summary(fit: dict[str, Any]) -> dict[str, Any]:
    """How a unit ended, for its result row: `stopped` (patience | max_epochs for trained units, converged |
    max_iter for linear probes), the best epoch and epochs run, or the probe's C and solver iterations."""
    if "probe" in fit:
        return {"stopped": fit["stopped"], "best_epoch": None, "epochs_run": None, "probe_c": fit["probe"]["c"],
                "probe_iterations": fit["probe"]["iterations"]}
    return {"stopped": fit["stopped"], "best_epoch": fit["best_epoch"], "epochs_run": fit["epochs_run"],
            "probe_c": None, "probe_iterations": None}


@dataclass
class ProtocolResult:
    """Per-repeat result rows, the summary over repeats and the results folder."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    out: Path
    split_note: str = ""
    recipe: str = ""  # the pretraining recipe: objective, augmentation, encoder
    robustness: list[dict[str, Any]] | None = None  # the robustness summary, with --robustness
    robustness_skipped: list[str] = field(default_factory=list)
    collapses: list[str] = field(default_factory=list)  # pretraining units whose representation collapsed
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)  # pretraining unit -> the epoch pretrain.pt keeps


@dataclass
class Transfer:
    """An encoder pretrained elsewhere that `ecgcl run --pretrained` evaluates instead of pretraining."""

    path: str
    state: dict[str, Any]
    meta: dict[str, Any]

    @property
    def source(self) -> str:
        return f"pretrained encoder {self.path}"

    def recipe(self, store) -> str:
        epochs = self.meta.get("chosen_epoch")
        return (f"pretrained encoder {self.path} (objective {self.meta.get('objective')}, "
                f"{epochs if epochs is not None else 'unknown'} epochs) evaluated on {store.path}; "
                "--pretrain-epochs and the other pretraining options are not used")


def load_transfer(config: RunConfig, given: dict[str, Any], registry=None) -> tuple[RunConfig, Transfer]:
    """The `--pretrained` encoder (pretrain.pt, an exported folder or hf://ORG/NAME, as `ecgcl finetune
    --checkpoint` loads it) and the config whose model options (encoder, its options, embedding size, input)
    are the checkpoint's; `given` options that contradict it are refused."""
    from ecgcl.protocol.pretrained import checkpoint_model

    path = config.pretrained[0]
    state, meta = checkpoint_model(path, given, registry)
    config = dataclasses.replace(config, encoder=meta["encoder"], encoder_args=dict(meta["encoder_args"]),
                                 embed_dim=meta["embed_dim"], input=meta["representation"])
    return config, Transfer(path, state, meta)


def adopt_transfer(exp: Experiment, transfer: Transfer) -> None:
    """Fit the experiment to the pretrained encoder: its view length, and its leads mapped onto the store's by
    name (default --missing-leads policy; a store of another rate or length is resampled / padded to the
    checkpoint's, as for `ecgcl finetune`: `adopt_store`). Every repeat's split is checked before anything is
    written: a checkpoint pretrained on this store that saw a validation/test patient is refused; one from
    another store gets one note."""
    from ecgcl.engine.lead_mapping import lead_plan_for
    from ecgcl.protocol.pretrained import adopt_store

    adopt_store(exp, transfer.meta, source=transfer.source)
    exp.lead_plan = lead_plan_for(transfer.meta, exp.store, None, source=transfer.source, registry=exp.registry)
    exp.window = transfer.meta["window"]
    if exp.lead_plan.missing:
        exp.reporter.message(f"leads {','.join(exp.lead_plan.missing)} of the {transfer.source} are not in the "
                             f"store: --missing-leads {exp.lead_plan.policy}")
    notes = set()
    for repeat in range(exp.config.repeats):
        try:
            notes.add(check_pretraining_excludes(transfer.meta, exp.store, draw_repeat_split(exp, repeat),
                                                 source=transfer.source))
        except EcgclError as error:
            if repeat == 0:
                raise
            raise EcgclError(f"repeat {repeat + 1}: {error}; `ecgcl pretrain` holds out the patients of repeat 1 "
                             "only: use --repeats 1, or an encoder pretrained on another store") from None
    for note in sorted(filter(None, notes)):
        exp.reporter.message(f"Note: {note}")


@locks_results_folder
def run_protocol(config: RunConfig, *, registry=None, reporter: Reporter | None = None, overwrite: bool = False,
                 on_epoch_end: Callable[[str, int, int, dict], None] | None = None,
                 given: dict[str, Any] | None = None) -> ProtocolResult:
    """Run the whole protocol and write the results folder (see the module docstring), holding its lock.

    With `config.pretrained`, the pretrained methods start from that encoder in every repeat and nothing is
    pretrained (see `load_transfer`, `adopt_transfer`); `given`: the options the user set, checked against it."""
    import json

    from ecgcl.engine.checkpoint import KEPT, load_checkpoint
    from ecgcl.engine.device import seed_everything
    from ecgcl.files import make_folders, write_json, writing
    from ecgcl.protocol.results import plot_label_efficiency, plot_loss_curves, summarise, write_tables
    from ecgcl.protocol.splits import check_both_classes, label_fraction_subset, pretraining_pool
    from ecgcl.split_spec import parse_split

    from ecgcl.engine.guards import check_pretraining_batch_size
    from ecgcl.protocol.curves import CURVES_FILE, plot_training_curves, run_artifacts
    from ecgcl.protocol.report import report_or_warn
    from ecgcl.protocol.watching import HISTORY_FILE, build_trackers, read_history, run_listeners

    config.check_methods()
    transfer = None
    if config.pretrained:
        config, transfer = load_transfer(config, given or {}, registry)
    needs_pretraining = config.needs_pretraining and transfer is None
    if needs_pretraining:
        check_pretraining_batch_size(config.batch_size)
    exp = prepare(config, registry=registry, reporter=reporter, pretraining=needs_pretraining)
    exp.repeated = True
    if transfer is not None:
        adopt_transfer(exp, transfer)
    if needs_pretraining:
        exp.watch(labelled=True)
    trackers = build_trackers(config, exp.registry)
    strategy = parse_split(config.split, config.val_folds, config.test_folds)
    out = Path(config.out)
    if overwrite and (out / "repeats").exists():
        shutil.rmtree(out / "repeats")
    if overwrite:
        (out / HISTORY_FILE).unlink(missing_ok=True)
    if not overwrite:
        check_results_folder(out, config)
    make_folders(out, "results folder", kept=KEPT)
    with writing(out / "config.json", "run configuration", kept=KEPT):  # RunConfig.save writes the file itself
        config.save(out)
    exp.reporter = run_listeners(exp.reporter, out, trackers)
    exp.reporter.run_started(out, config.to_dict())
    store, targets = exp.store, exp.targets
    codes, key = store.group_codes, targets.stratify_key()  # patients joined by duplicate records
    rows: list[dict[str, Any]] = []
    robustness_rows: list[dict[str, Any]] = []
    pretrain_histories: dict[int, list] = {}
    for repeat in range(config.repeats):
        seed = config.seed + repeat
        seed_everything(seed)
        split = draw_repeat_split(exp, repeat)
        check_both_classes(targets.y, split.parts(), repeat=repeat + 1, task=config.task,
                           class_names=targets.class_names)
        pool = pretraining_pool(codes, split)
        folder = out / "repeats" / f"repeat_{repeat + 1}"
        make_folders(folder, "repeat folder", kept=KEPT)
        ids = store.metadata["record_id"].astype(str).to_numpy()
        write_json(folder / "split.json", {"seed": seed, "strategy": config.split, "description": strategy.describe(),
                                           **{p: ids[r].tolist() for p, r in split.parts().items()},
                                           "pretraining_pool": ids[pool].tolist()}, what="split", kept=KEPT)
        encoder_state = transfer.state if transfer is not None else None
        if needs_pretraining:
            unit = {"repeat": repeat}
            done = folder / "pretrain.pt"
            if done.is_file() and load_checkpoint(done)["meta"].get("pool_records") == len(pool) and \
                    _fingerprint_of(folder / "pretrain.last.pt") == exp.fingerprint(stage="pretrain", **unit):
                saved = load_checkpoint(done)
                encoder_state, pretrain_histories[repeat] = saved["encoder"], saved["history"]
                exp.chosen[exp.unit_name(unit, "pretrain")] = {
                    "epoch": saved["meta"].get("chosen_epoch", len(saved["history"])),
                    "by": saved["meta"].get("chosen_by", "last"), "value": saved["meta"].get("chosen_value")}
                exp.reporter.message(f"repeat {repeat + 1}: pretraining already finished, reusing {done}")
            else:
                encoder, pretrain_histories[repeat] = run_pretraining(exp, pool, folder, seed, unit=unit,
                                                                      on_epoch_end=on_epoch_end, split=split)
                encoder_state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
        for fraction in config.label_fractions:
            train_rows = label_fraction_subset(split.train, codes, key, fraction, seed)
            check_both_classes(targets.y, {f"train ({fraction:g} of labels)": train_rows}, repeat=repeat + 1,
                               task=config.task, class_names=targets.class_names)
            sub = folder / f"labels_{fraction:g}"
            make_folders(sub, "label fraction folder", kept=KEPT)
            for method in config.methods:
                unit = {"repeat": repeat, "seed": seed, "label_fraction": fraction, "method": method}
                result_file = sub / f"{method}.json"
                saved = json.loads(result_file.read_text()) if result_file.is_file() else {}
                if saved.get("fingerprint") == exp.fingerprint(stage="classifier", **unit):
                    row = _restore_nan(saved)
                    exp.reporter.message(f"{_label(unit)}already finished")
                else:
                    state = encoder_state if declared(method).pretrained else None
                    row = run_finetuning(exp, method=method, encoder_state=state, train_rows=train_rows,
                                         val_rows=split.val, test_rows=split.test, folder=sub, seed=seed, unit=unit,
                                         on_epoch_end=on_epoch_end)
                    write_json(result_file, {**row, "fingerprint": exp.fingerprint(stage="classifier", **unit)},
                               what="unit result", kept=KEPT)
                    (sub / f"{method}.last.pt").unlink(missing_ok=True)  # finished: the best checkpoint remains
                rows.append(row)
                if config.robustness:
                    robustness_rows += unit_robustness(exp, row, split.test, sub)
    kept = {"pretrain_select": config.pretrain_select,
            "pretrain_chosen_epochs": [m["epoch"] for m in exp.chosen.values()]} if needs_pretraining else {}
    if transfer is not None:
        kept = {"pretrained": transfer.path, "pretrain_chosen_epochs": [transfer.meta.get("chosen_epoch")]}
    objective = transfer.meta.get("objective") if transfer is not None else config.objective
    summary = [{**row, "objective": objective, **(kept if declared(row["method"]).pretrained else {})}
               for row in summarise(rows)]  # which pretraining (and which of its epochs), in the file
    write_tables(out, rows, summary)
    plot_loss_curves(out / "loss_curves.png", pretrain_histories, rows)
    plot_label_efficiency(out / "label_efficiency.png", summary)
    plot_training_curves(out / CURVES_FILE, read_history(out), exp.chosen)
    recipe = (f"pretraining: objective {config.objective}, aug {exp.aug_spec}, encoder {config.encoder}"
              if needs_pretraining else f"encoder {config.encoder} (no pretraining)")
    if transfer is not None:
        recipe = transfer.recipe(store)
    result = ProtocolResult(rows, summary, out, strategy.describe(), recipe, collapses=list(exp.collapses),
                            chosen=dict(exp.chosen))
    if config.robustness:
        from ecgcl.robustness.conditions import robustness_grid
        from ecgcl.robustness.report import summarise_robustness, write_robustness

        _, skipped = robustness_grid(store.leads, store.fs, config.robustness_extra)
        result.robustness = summarise_robustness(robustness_rows)
        result.robustness_skipped = skipped
        write_robustness(out, robustness_rows, result.robustness, skipped=skipped, seed=config.seed)
    report_or_warn(out, exp.reporter)  # OUT/report.html; a failure is a warning, never a lost run
    exp.reporter.run_finished(run_artifacts(out))
    return result


def unit_robustness(exp: Experiment, row: dict[str, Any], test_rows: np.ndarray, folder: Path) -> list[dict[str, Any]]:
    """The robustness scores of one finished unit (its best checkpoint on its test records), computed once.

    They are kept in `<method>.robustness.json` beside the unit's result, keyed by the grid's settings, so a
    resumed run (or `--resume --robustness` on a finished one) scores only what is new.
    """
    import json

    from ecgcl.engine.checkpoint import KEPT, load_checkpoint
    from ecgcl.engine.evaluate import load_classifier
    from ecgcl.files import write_json
    from ecgcl.robustness.conditions import robustness_grid
    from ecgcl.robustness.report import score_conditions

    c = exp.config
    unit = {k: row[k] for k in ("repeat", "seed", "label_fraction", "method")}
    key = {"extra": list(c.robustness_extra), "seed": row["seed"], "checkpoint_epoch": row["best_epoch"],
           "probe_c": row.get("probe_c")}
    path = folder / f"{row['method']}.robustness.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return [{**unit, **r} for r in saved["scores"]]
    conditions, _ = robustness_grid(exp.store.leads, exp.store.fs, c.robustness_extra)
    source = f"checkpoint {row['checkpoint']}"
    model = load_classifier(load_checkpoint(row["checkpoint"]), exp.registry, source=source)
    scores = score_conditions(model, exp.store, test_rows, exp.targets.y, conditions, registry=exp.registry,
                              seed=row["seed"], device=exp.device, batch_size=c.batch_size,
                              threshold=row.get("threshold", 0.5))
    write_json(path, {"key": key, "scores": scores}, what="robustness scores", kept=KEPT)
    return [{**unit, **r} for r in scores]


def _fingerprint_of(path: Path) -> dict | None:
    from ecgcl.engine.checkpoint import load_checkpoint

    return load_checkpoint(path).get("fingerprint") if path.is_file() else None


def _restore_nan(row: dict[str, Any]) -> dict[str, Any]:
    """JSON stores NaN metrics as null; bring them back as NaN for the summary."""
    from ecgcl.metrics import METRIC_NAMES

    return {k: (float("nan") if k in METRIC_NAMES and v is None else v) for k, v in row.items() if k != "fingerprint"}
