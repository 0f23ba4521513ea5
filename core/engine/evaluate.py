"""Evaluate a fine-tuned checkpoint on any compatible store (`ecgcl evaluate CHECKPOINT --data STORE`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError


def encoder_from_meta(meta: dict[str, Any], registry, *, source: str):
    """A fresh encoder built as a checkpoint's `meta` describes (name, arguments, leads, window, input)."""
    from ecgcl.engine.model import build_encoder

    if ("encoder", meta["encoder"]) not in registry:
        raise EcgclError(f"{source} needs encoder {meta['encoder']!r}, which no installed plugin provides")
    return build_encoder(registry, meta["encoder"], in_leads=meta["num_leads"], window=meta["window"],
                         representation=meta["representation"], embed_dim=meta["embed_dim"],
                         encoder_args=meta["encoder_args"])


def load_classifier(checkpoint: dict[str, Any], registry, *, source: str):
    """Rebuild the `Classifier` a classifier checkpoint describes and load its weights."""
    from ecgcl.engine.model import Classifier

    meta = checkpoint["meta"]
    encoder = encoder_from_meta(meta, registry, source=source)
    model = Classifier(encoder, meta["num_outputs"], window=meta["window"], representation=meta["representation"],
                       dropout=meta.get("dropout", 0.0), softmax=meta.get("target_kind") == "multiclass")
    model.load_state_dict(checkpoint["model"])
    return model


def evaluate_checkpoint(checkpoint_path: str | os.PathLike, data: str | os.PathLike, *, registry=None,
                        device: str = "auto", batch_size: int = 64,
                        record_ids: list[str] | None = None, all_records: bool = False) -> dict[str, Any]:
    """Metrics of a fine-tuned checkpoint on the labelled records of a store (or on `record_ids` of it).

    On the store it was trained on, the default is the checkpoint's own test records, so training and
    validation records never inflate the numbers; `all_records=True` takes every labelled record instead.
    Refuses a store whose leads, length or sampling rate differ from the training data's. Accuracy, precision,
    recall and F1 use the threshold chosen on the training run's validation records (0.5 for older checkpoints).
    """
    from ecgcl.data.store import open_store
    from ecgcl.data.tasks import task_targets
    from ecgcl.engine.checkpoint import check_store_matches, load_checkpoint_of_kind, same_preprocessing
    from ecgcl.engine.device import select_device
    from ecgcl.engine.loops import predict
    from ecgcl.protocol.metrics import classification_metrics, per_class_metrics

    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    source = f"checkpoint {checkpoint_path}"
    checkpoint = load_checkpoint_of_kind(checkpoint_path, "classifier", needed_by="`evaluate` needs a fine-tuned "
                                         "one (a *.best.pt file from `ecgcl run` or `ecgcl finetune`)")
    meta = checkpoint["meta"]
    store = open_store(data)
    check_store_matches(meta, store, source=source)
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
        ids = store.metadata["record_id"].astype(str).to_numpy()
        rows = rows[np.isin(ids[rows], list(wanted))]
        if len(rows) == 0:
            raise EcgclError(f"none of the {len(wanted)} requested records is a labelled record of store {store.path}")
    model = load_classifier(checkpoint, registry, source=source)
    threshold = meta.get("threshold", 0.5)  # chosen on the training run's validation records
    probs = predict(model, store, rows, batch_size=batch_size, device=select_device(device))
    return {"checkpoint": str(checkpoint_path), "store": str(store.path), "task": meta["task"],
            "records": int(len(rows)), "records_used": records_used,
            "same_data_as_training": store.hash == meta["manifest_hash"],
            "same_filter_as_training": same_preprocessing(meta, store),
            "threshold": threshold,
            **classification_metrics(targets.y[rows], probs, threshold),
            "per_class": per_class_metrics(targets.y[rows], probs, targets.class_names, threshold)}
