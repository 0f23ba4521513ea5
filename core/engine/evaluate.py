"""Evaluate a fine-tuned checkpoint on any compatible store (`ecgcl evaluate CHECKPOINT --data STORE`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError


def load_classifier(checkpoint: dict[str, Any], registry, *, source: str, plan=None):
    """Rebuild the `Classifier` a classifier checkpoint describes and load its weights.

    `plan` (a `LeadPlan` for the store it will see) adds the lead adapter, and with `slice` restricts the
    encoder's first layer to the present leads.
    """
    from ecgcl.engine.lead_mapping import slice_state
    from ecgcl.engine.model import Classifier, encoder_from_meta

    meta = checkpoint["meta"]
    encoder = encoder_from_meta(meta, registry, source=source,
                                leads=list(plan.encoder_leads) if plan is not None else None)
    model = Classifier(encoder, meta["num_outputs"], window=meta["window"], representation=meta["representation"],
                       dropout=meta.get("dropout", 0.0), softmax=meta.get("target_kind") == "multiclass",
                       lead_adapter=plan.adapter() if plan is not None else None)
    state = checkpoint["model"]
    if plan is not None and plan.policy == "slice":
        state = slice_state(state, model, plan, source=source)
    model.load_state_dict(state)
    return model


@dataclass
class Evaluation:
    """A fine-tuned model ready to score the chosen labelled records of a store."""

    checkpoint: str
    model: Any
    store: Any
    meta: dict[str, Any]
    plan: Any
    y: np.ndarray
    rows: np.ndarray
    records_used: str
    device: Any
    batch_size: int
    registry: Any
    class_names: list[str]

    @property
    def threshold(self) -> float:
        """The decision threshold chosen on the training run's validation records (0.5 for older checkpoints)."""
        return self.meta.get("threshold", 0.5)

    def info(self) -> dict[str, Any]:
        """What was evaluated: checkpoint, store, task, records, how the data relates to training, lead mapping."""
        from ecgcl.engine.checkpoint import same_preprocessing

        return {"checkpoint": self.checkpoint, "store": str(self.store.path), "task": self.meta["task"],
                "records": int(len(self.rows)), "records_used": self.records_used,
                "same_data_as_training": self.store.hash == self.meta["manifest_hash"],
                "same_filter_as_training": same_preprocessing(self.meta, self.store), **self.plan.describe(),
                "threshold": self.threshold}

    def metrics(self) -> dict[str, Any]:
        """Test metrics on the clean records, overall and per class."""
        from ecgcl.engine.inference import predict
        from ecgcl.metrics import classification_metrics, per_class_metrics

        probs = predict(self.model, self.store, self.rows, batch_size=self.batch_size, device=self.device)
        y = self.y[self.rows]
        return {**classification_metrics(y, probs, self.threshold),
                "per_class": per_class_metrics(y, probs, self.class_names, self.threshold)}


def open_evaluation(checkpoint_path: str | os.PathLike, data: str | os.PathLike, *, registry=None,
                    device: str = "auto", batch_size: int = 64, record_ids: list[str] | None = None,
                    all_records: bool = False, missing_leads: str | None = None) -> Evaluation:
    """Load a fine-tuned checkpoint for the labelled records of a store (or `record_ids` of it).

    On the store it was trained on, the default is the checkpoint's own test records, so training and
    validation records never inflate the numbers; `all_records=True` takes every labelled record instead.
    Refuses a store whose length or sampling rate differ from the training data's, or that has a lead the
    checkpoint never saw; a subset of its leads is mapped by name (`missing_leads`: zero or slice; default:
    the fine-tuned checkpoint's own choice, else zero after lead-mask pretraining and slice otherwise).
    Accuracy, precision, recall and F1 use the threshold chosen on the training run's validation records.
    """
    from ecgcl.data.store import open_store
    from ecgcl.tasks import task_targets
    from ecgcl.engine.checkpoint import load_checkpoint_of_kind
    from ecgcl.engine.device import select_device
    from ecgcl.engine.lead_mapping import lead_plan_for

    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    source = f"checkpoint {checkpoint_path}"
    checkpoint = load_checkpoint_of_kind(checkpoint_path, "classifier", needed_by="`evaluate` needs a fine-tuned "
                                         "one (a *.best.pt file from `ecgcl run` or `ecgcl finetune`)",
                                         registry=registry)
    meta = checkpoint["meta"]
    store = open_store(data)
    plan = lead_plan_for(meta, store, missing_leads or meta.get("missing_leads"), source=source, registry=registry)
    targets = task_targets(meta["task"], store.metadata, registry=registry, source=f"store {store.path}")
    if list(targets.class_names) != list(meta.get("class_names", targets.class_names)):
        raise EcgclError(f"task {meta['task']!r} on store {store.path} gives classes {', '.join(targets.class_names)}, "
                         f"but {source} was trained on {', '.join(meta['class_names'])}")
    rows = np.flatnonzero(targets.labelled)
    records_used = "given records" if record_ids is not None else "every labelled record"
    if record_ids is None and not all_records and store.hash == meta["manifest_hash"] and "test_record_ids" in meta:
        record_ids, records_used = meta["test_record_ids"], "the checkpoint's test records"
    if record_ids is not None:
        wanted = set(map(str, record_ids))
        ids = store.metadata["record_id"].astype(str)
        rows = rows[ids.iloc[rows].isin(wanted).to_numpy()]  # hashed membership: O(records), not records x ids
        if len(rows) == 0:
            raise EcgclError(f"none of the {len(wanted)} requested records is a labelled record of store {store.path}")
    model = load_classifier(checkpoint, registry, source=source, plan=plan)
    return Evaluation(str(checkpoint_path), model, store, meta, plan, targets.y, rows, records_used,
                      select_device(device), batch_size, registry, list(targets.class_names))
