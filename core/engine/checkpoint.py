"""Checkpoints: written atomically, carrying what is needed to rebuild and check the model.

A checkpoint is a dict saved with `torch.save`: `meta` (encoder name and arguments, input representation,
window length, preprocessing, the store's manifest hash, fs, leads and length, task and classes), the state
dicts, and for `*.last.pt` files the optimizer state, the last finished epoch and the training history.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ecgcl.errors import EcgclError
from ecgcl.files import atomic_write, make_folders

FORMAT = "ecgcl-checkpoint-1"
KEPT = "finished epochs are kept"  # what a rerun after a failed checkpoint write keeps


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` through a temporary file and a rename, so a crash never leaves half a file.

    Under torch.distributed only rank 0 writes (every rank holds the same weights); other ranks return the path.
    A failed write (no space, no permission: an `OSError`) leaves no temporary file and is one `EcgclError` line
    naming the file (`ecgcl.files.write_error`); the checkpoints already written stay, so a rerun resumes.
    """
    from ecgcl.distributed import is_main_process

    path = Path(path)
    if not is_main_process():
        return path
    make_folders(path.parent, "checkpoint folder", kept=KEPT)
    atomic_write(path, lambda handle: torch.save(_plain({"format": FORMAT, **payload}), handle), what="checkpoint",
                 kept=KEPT)
    return path


def _plain(value: Any) -> Any:
    """`value` as tensors, numbers, strings, lists and dicts, the only types `weights_only=True` loads back."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def load_checkpoint(path: str | os.PathLike, *, registry=None) -> dict[str, Any]:
    """Load a checkpoint on CPU, with a clear error for a missing, damaged or foreign file.

    `path` may also be a folder written by `ecgcl export` (or `hf://ORG/NAME`, see `ecgcl.engine.exported`):
    its safetensors weights and config become the same dict. A model's metadata is checked against its schema
    and its weights against the model it describes (`ecgcl.engine.weights_fit`, with `registry`, default the
    installed plugins') before anything is built from it.
    """
    from ecgcl.engine.exported import is_exported, read_exported, resolve_model

    path = resolve_model(path)
    if is_exported(path):
        return {"format": FORMAT, **read_exported(path, registry or _installed_registry())}
    if path.is_dir():
        raise EcgclError(f"{path} is a folder without config.json: pass a checkpoint file (pretrain.pt, *.best.pt) "
                         "or a folder written by `ecgcl export`")
    if not path.is_file():
        raise EcgclError(f"checkpoint {path} does not exist")
    try:
        # weights_only: tensors, numbers, strings, lists and dicts only, so a crafted pickle cannot run code
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():  # not a refused import: a damaged or non-pickle file
            raise EcgclError(f"checkpoint {path} cannot be read: {error}") from error
        raise EcgclError(f"{path} is not an ecgcl checkpoint (it holds objects other than tensors, numbers, "
                         f"strings, lists and dicts, which are never loaded)") from error
    except Exception as error:  # torch raises many types for a damaged file
        raise EcgclError(f"checkpoint {path} cannot be read: {type(error).__name__}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EcgclError(f"{path} is not an ecgcl checkpoint")
    _check_model(payload, path, registry)
    return payload


def _installed_registry():
    from ecgcl.manager import get_registry

    return get_registry()


def _check_model(payload: dict[str, Any], path: Path, registry) -> None:
    """The schema and weights checks of `ecgcl.engine.weights_fit` for a checkpoint that holds a model; a
    resume file written without metadata (a loop called directly) has nothing to check."""
    from ecgcl.engine.weights_fit import MODEL_KINDS, WEIGHT_KEYS, check_weights_fit, state_shapes

    kind = payload.get("kind")
    if kind not in MODEL_KINDS or (kind in ("pretrain", "classifier-last") and not payload.get("meta")):
        return
    where = f"checkpoint {path}"
    key = WEIGHT_KEYS[kind]
    if key not in payload:
        raise EcgclError(f"{where}: it holds no {key!r} weights; expected the weights of its {kind} model")
    check_weights_fit(payload.get("meta"), state_shapes(payload[key], source=where), registry or _installed_registry(),
                      kind=kind, where=where, config="its metadata", weights_name="its weights")


def load_checkpoint_of_kind(path: str | os.PathLike, kind: str, *, needed_by: str, registry=None) -> dict[str, Any]:
    """`load_checkpoint`, refusing a checkpoint of another kind with a line saying what `needed_by` takes."""
    payload = load_checkpoint(path, registry=registry)
    if payload.get("kind") != kind:
        raise EcgclError(f"checkpoint {path} is a {payload.get('kind')!r} checkpoint; {needed_by}")
    return payload


def store_meta(store) -> dict[str, Any]:
    """What a checkpoint records about the data it was trained on."""
    manifest = store.manifest
    preprocessing = {k: manifest[k] for k in ("source", "options", "preprocessing", "units") if k in manifest}
    return {
        "manifest_hash": store.hash,
        "fs": store.fs,
        "leads": store.leads,
        "num_leads": int(store.signals.shape[1]),
        "length": int(store.signals.shape[2]),
        "preprocessing": preprocessing,
    }


def check_store_matches(meta: dict[str, Any], store, *, source: str) -> None:
    """Refuse a store whose rate differs from the checkpoint's, or whose records are shorter than its window.

    `ecgcl finetune --checkpoint` and `ecgcl run --pretrained` first map a store of another rate or length onto
    the checkpoint's (`ecgcl.data.adapt.adapt_to_encoder`), so what reaches this check there always passes;
    `ecgcl evaluate` and `ecgcl embed` take the store as it is. Records of any length >= the window are taken
    (the model cuts them into windows, `ecgcl.engine.model.embed`). Leads are matched by name separately
    (`ecgcl.engine.lead_mapping.plan_leads`): a store may hold the trained leads in another order, or a subset.
    """
    expected = (meta["num_leads"], meta["length"], float(meta["fs"]))
    got = (int(store.signals.shape[1]), int(store.signals.shape[2]), store.fs)
    window = int(meta.get("window", meta["length"]))
    if got[2] != expected[2] or got[1] < window:
        raise EcgclError(
            f"{source} was trained on {expected[0]} leads x {expected[1]} samples at {expected[2]:g} Hz, "
            f"but store {store.path} has {got[0]} leads x {got[1]} samples at {got[2]:g} Hz (it needs the same "
            f"rate and at least {window} samples; `ecgcl finetune --checkpoint` and `ecgcl run --pretrained` "
            "resample and pad a store themselves)"
        )


def same_preprocessing(meta: dict[str, Any], store) -> bool:
    """Whether the store was filtered like the checkpoint's training data (a mismatch is allowed but reported)."""
    trained = meta.get("preprocessing", {}).get("options", {})
    current = store.manifest.get("options", {})
    return trained.get("filter") == current.get("filter")


def check_encoder_matches(meta: dict[str, Any], encoder: str, *, source: str) -> None:
    """Refuse a checkpoint whose encoder is not the one asked for."""
    if meta.get("encoder") != encoder:
        raise EcgclError(f"{source} holds encoder {meta.get('encoder')!r}, not {encoder!r} (pass --encoder "
                         f"{meta.get('encoder')} or another checkpoint)")
