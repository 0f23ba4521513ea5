"""The component interfaces plugins implement: `Augmentation`, `Encoder`, `Loss`, `Task`, `Objective`, `Monitor`
and `Tracker`.

Batches are `(B, L, T)` float tensors: B recordings, L leads, T samples. A task turns a store's metadata
table into `TaskTargets`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TARGET_KINDS = ("binary", "multiclass", "multilabel")


class Augmentation(ABC):
    """A random transform of a whole batch, drawn from an explicit `torch.Generator`.

    Implementations are vectorised over samples and leads, run on the batch's device, and give every
    sample its own random draw. The output has the input's shape unless the class says otherwise.
    """

    name: str = ""
    pairs_views: bool = False  # True where `views` forms the pair from one recording (see `views`)
    # True where the augmentation zeroes whole leads, so an encoder pretrained with it has learnt to work
    # without some: such an encoder gets `--missing-leads zero` by default (`ecgcl.engine.lead_mapping`).
    # Read from the registered factory without building it, so declare it on the class.
    masks_leads: bool = False

    @abstractmethod
    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Return the augmented batch; `generator` must live on `batch.device`."""

    def views(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two views of `batch` for contrastive training: by default two independent draws of `self`.

        Augmentations whose two views are parts of one recording (CLOCS segments or lead groups) override
        this; `pairs_views` is then True so that `ecgcl.compose.Compose` knows where the pair is formed.
        """
        return self(batch, generator), self(batch, generator)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the output (and of each view) for an input `shape`; the input's shape by default."""
        return tuple(shape)

    def check_input(self, batch: Tensor, generator: torch.Generator) -> None:
        """Raise `EcgclError` unless `batch` is a floating `(B, L, T)` tensor and `generator` lives on its device."""
        from ecgcl.errors import EcgclError

        label = self.name or type(self).__name__
        if not isinstance(batch, Tensor) or batch.dim() != 3 or not batch.is_floating_point():
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise EcgclError(f"augmentation {label!r} expects a floating (batch, leads, samples) tensor, got {got}")
        if not isinstance(generator, torch.Generator):
            raise EcgclError(f"augmentation {label!r} needs a torch.Generator, got {type(generator).__name__}")
        gen_device, batch_device = torch.device(generator.device), batch.device
        if gen_device.type != batch_device.type or (
            gen_device.type != "cpu" and (gen_device.index or 0) != (batch_device.index or 0)
        ):
            raise EcgclError(
                f"augmentation {label!r}: the generator is on {gen_device} but the batch is on {batch_device}; "
                f"create it with torch.Generator(device=batch.device)"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Encoder(nn.Module):
    """Maps `(B, leads, samples)` to `(B, embed_dim)` for the lead count and length given at construction."""

    embed_dim: int

    def __init__(self, in_leads: int, length: int, embed_dim: int) -> None:
        super().__init__()
        if in_leads < 1 or length < 1 or embed_dim < 1:
            raise ValueError(f"{type(self).__name__}: in_leads, length and embed_dim must be positive")
        self.in_leads = in_leads
        self.length = length
        self.embed_dim = embed_dim

    def check_input(self, batch: Tensor) -> None:
        """Raise a clear error when a batch does not have the shape this encoder was built for."""
        if batch.dim() != 3 or batch.shape[1] != self.in_leads:
            raise ValueError(
                f"{type(self).__name__} expects (batch, {self.in_leads} leads, samples), got {tuple(batch.shape)}"
            )

    # Optional, for objectives that work on steps or tokens (CPC, masked modelling, JEPA):
    #   sequence(batch) -> (B, steps, sequence_dim): per-step features, in time order, from the encoder's
    #   front end; an encoder that has them sets `sequence_dim`.
    #   Token encoders (per-lead patches, e.g. `patch_transformer`) also expose `tokens(batch) -> (B, N, D)`
    #   (patch embeddings with positions), `encode_tokens(tokens, keep) -> (B, K, D)` (the transformer over
    #   the kept tokens only, `keep` (B, K) token indices), `patches(batch) -> (B, N, patch_samples)` and
    #   `token_dim`; an objective declares what it needs (`Objective.needs`).


class Loss(nn.Module, ABC):
    """A contrastive loss over the embeddings of two views; `patient_ids` lets a loss pair recordings."""

    @abstractmethod
    def forward(self, z1: Tensor, z2: Tensor, patient_ids: Tensor | None = None) -> Tensor:
        """Return a scalar loss for the (B, D) embeddings of two views of the same B recordings."""


class Objective(nn.Module):
    """A pretraining objective (SimCLR-style contrastive, BYOL, VICReg, masked modelling, JEPA, CPC).

    It owns everything pretraining trains besides the encoder (projection, predictor, expander, decoder,
    momentum target); `forward(encoder, batch, patient_ids, generator)` returns the scalar loss of one batch,
    where `encoder` is the runtime's `PretrainEncoder` view of the encoder (`embed(x) -> (B, D)`, `sequence`,
    `tokens`, `encode_tokens`, `module` for the raw encoder) and `generator` drives every random draw (views,
    masks). `after_step(step, total_steps)` runs after each optimizer step (EMA updates, schedules). Its state
    dict is checkpointed in `pretrain.last.pt`; `pretrain.pt` keeps the encoder alone, so fine-tuning never
    depends on the objective. A factory receives by name, from the runtime, `encoder` (the module), `embed_dim`,
    `augmentation` (the `--aug` Compose), `loss` (the `--loss` module), `fs`, `leads`, `length`, `in_leads`.
    """

    needs: str | None = None  # "sequence" or "tokens": what the encoder must expose (None: embeddings only)
    takes_loss: bool = False  # whether --loss / --loss-arg mean anything to it
    default_aug: str = "none"  # --aug when the user gives none (views for two-view objectives, else a perturbation)
    two_views: bool = False  # whether it trains on two augmented views (the `align_uniform` monitor measures them)

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step with the global step (0-based) and the run's total steps."""

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict[str, Any]:
        """Optional: what one batch trains on, drawn from `generator` exactly as `forward` draws it (the built-in
        objectives' `forward` calls it, so `ecgcl show --aug` previews what training saw): `views` (the two
        augmented views), or `input` (the perturbed batch) with, for token objectives, `mask` ((B, N) True where
        a token is hidden) and `keep` ((B, K) visible token indices)."""
        raise NotImplementedError(f"objective {type(self).__name__} does not say what it draws")


@dataclass(frozen=True)
class TaskTargets:
    """What a task makes of a store: one target per record, which records it can use, and the class names.

    - `binary`: `y` is (N,) with 0/1, `class_names` is (negative, positive);
    - `multiclass`: `y` is (N,) with class indices 0..C-1 (one class per record, softmax), C >= 2 names;
    - `multilabel`: `y` is (N, C) with 0/1 per class (sigmoid per class).
    N is the whole store; rows where `labelled` is False are not used (they stay available for pretraining).
    `strata` optionally gives the stratification key of the splits (default: see `stratify_key`).
    """

    name: str
    y: np.ndarray
    labelled: np.ndarray
    class_names: tuple[str, ...]
    kind: str = "binary"
    strata: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "labelled", np.asarray(self.labelled, dtype=bool))
        self.check()

    def check(self) -> None:
        """Raise ValueError when the arrays do not follow the contract of the class docstring."""
        n = len(self.labelled)
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TARGET_KINDS)}, not {self.kind!r}")
        expected = (n, len(self.class_names)) if self.kind == "multilabel" else (n,)
        if self.y.shape != expected:
            raise ValueError(f"{self.kind} targets must have shape {expected}, got {self.y.shape}")
        if self.kind == "binary" and len(self.class_names) != 2:
            raise ValueError(f"binary targets need 2 class names (negative, positive), got {self.class_names}")
        if self.kind != "binary" and len(self.class_names) < 2:
            raise ValueError(f"{self.kind} targets need at least 2 class names, got {self.class_names}")
        used = self.y[self.labelled]
        allowed = range(len(self.class_names)) if self.kind == "multiclass" else (0, 1)
        if used.size and not np.isin(used, list(allowed)).all():
            raise ValueError(f"{self.kind} targets of labelled records must be in {list(allowed)}")
        if self.strata is not None and len(self.strata) != n:
            raise ValueError(f"strata must have one value per record ({n}), got {len(self.strata)}")

    @property
    def multilabel(self) -> bool:
        return self.kind == "multilabel"

    @property
    def multiclass(self) -> bool:
        return self.kind == "multiclass"

    @property
    def num_outputs(self) -> int:
        return 1 if self.kind == "binary" else len(self.class_names)

    def stratify_key(self) -> np.ndarray:
        """One integer per record for stratified splitting (the class, or the first positive class + 1)."""
        if self.strata is not None:
            return np.asarray(self.strata).astype(np.int64)
        if not self.multilabel:
            return self.y.astype(np.int64)
        return np.where(self.y.any(axis=1), self.y.argmax(axis=1) + 1, 0).astype(np.int64)

    def class_counts(self, rows: np.ndarray) -> dict[str, int]:
        """Records of each class among `rows` (for multi-label: positives of each class)."""
        y = self.y[np.asarray(rows, dtype=np.int64)]
        if self.multilabel:
            return {c: int(y[:, i].sum()) for i, c in enumerate(self.class_names)}
        return {c: int((y == i).sum()) for i, c in enumerate(self.class_names)}


class Task(ABC):
    """A downstream task: turns a store's metadata table (one row per record) into `TaskTargets`.

    Tasks read the `labels` column (';'-joined class names) or any other metadata column, and raise
    `ecgcl.errors.EcgclError` with a one-line reason when the store cannot serve them (a class no record
    has, a missing column). `name` is set by the runtime to the task spec the user gave.
    """

    name: str = ""

    @abstractmethod
    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        """The targets of every row of `metadata` (unusable rows marked in `labelled`)."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Monitor(ABC):
    """Figures about the current encoder during pretraining (RankMe, k-NN AUROC on validation, ...).

    Called every `--monitor-every` epochs with a `MonitorInputs` (`ecgcl.engine.monitoring`): embeddings of fixed
    record subsets by the encoder in eval mode without gradients (`inputs.embed(rows)`), the repeat's training and
    validation rows and targets when a task is labelled, and two augmented views when the objective has them.
    Test records are never among them. Returns named figures (`{"knn": 0.81}`); the one named like the monitor
    (`primary`) can choose the pretraining epoch (`--pretrain-select best:NAME`) and prune a tuning trial.
    """

    name: str = ""
    primary: str = ""  # the figure `best:NAME` and pruning read; empty: the figure named like the monitor
    needs_labels: bool = False  # True: runs only where a task and a split exist (queries are validation records)
    needs_views: bool = False  # True: uses `inputs.views` (two-view objectives only)
    higher_is_better: bool = True  # how `best:NAME` and pruning read the primary figure

    @abstractmethod
    def __call__(self, inputs) -> dict[str, float]:
        """The figures of the current encoder; NaN where a figure cannot be computed (one class in validation)."""


class Tracker(ABC):
    """Receives what a run does: its configuration, every epoch's record per unit and the files it wrote
    (TensorBoard, MLflow, W&B). Every call may raise: the runtime turns an exception into one warning and
    drops the tracker, so a logging error never loses a run."""

    name: str = ""

    @abstractmethod
    def start(self, out: Path, config: dict[str, Any]) -> None:
        """A run starts: `out` is its results folder, `config` the resolved run configuration."""

    @abstractmethod
    def log(self, unit: str, step: int, figures: dict[str, float]) -> None:
        """Figures of `unit` ('repeat 1 · pretrain') at `step` (the epoch, 1-based)."""

    def unit_finished(self, unit: str) -> None:
        """`unit` will log nothing more."""

    @abstractmethod
    def finish(self, artifacts: list[Path]) -> None:
        """The run ended; `artifacts` are its result files (tables, plots, config.json, summary.json)."""
