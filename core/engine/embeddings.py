"""`ecgcl embed`: the encoder's embedding of every record of a store (or of a split part), written to a file.

Works with pretrained encoder checkpoints (`pretrain.pt`, `pretrain.last.pt`) and fine-tuned classifiers
(`*.best.pt`, whose encoder part is used). Records are read in batches from the memory-mapped store and
embedded as in fine-tuning (`ecgcl.engine.model.embed`: encoders pretrained on shorter views average
their windows). Output: `FILE.npy` (float32, records x embed_dim) beside `FILE.ids.csv` (record_id,
patient_id, one row per embedding row), or `FILE.parquet` with every metadata column and `emb_0 ...`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError
from ecgcl.files import atomic_write, make_folders

OUTPUT_SUFFIXES = (".npy", ".parquet")
ENCODER_KINDS = ("encoder", "pretrain", "classifier")  # checkpoint kinds that hold an encoder


def encoder_state(checkpoint: dict[str, Any], *, source: str) -> dict[str, Any]:
    """The encoder weights of a pretrain or fine-tuned checkpoint."""
    kind = checkpoint.get("kind")
    if kind in ("encoder", "pretrain"):
        return checkpoint["encoder"]
    if kind == "classifier":
        return {k[len("encoder."):]: v for k, v in checkpoint["model"].items() if k.startswith("encoder.")}
    raise EcgclError(f"{source} is a {kind!r} checkpoint; `embed` needs pretrain.pt (or pretrain.last.pt) or a "
                     "fine-tuned *.best.pt")


def select_rows(store, record_ids: list[str] | None, *, source: str) -> np.ndarray:
    """Every record of the store, or exactly `record_ids` (each must be in the store), in store order."""
    if record_ids is None:
        return np.arange(len(store))
    ids = store.metadata["record_id"].astype(str)
    wanted = list(map(str, record_ids))
    missing = sorted(set(wanted) - set(ids))
    if missing:
        raise EcgclError(f"{len(missing)} of the {len(set(wanted))} records of {source} are not in store "
                         f"{store.path} (e.g. {missing[0]!r})")
    return np.flatnonzero(ids.isin(set(wanted)).to_numpy())  # hashed membership: O(records), not records x ids


def embed_checkpoint(checkpoint_path: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *,
                     record_ids: list[str] | None = None, record_source: str = "the request", registry=None,
                     device: str = "auto", batch_size: int = 64, overwrite: bool = False) -> dict[str, Any]:
    """Embed the records of store `data` with the checkpoint's encoder and write `out` (see the module doc).

    The store must have the length and sampling rate the checkpoint was trained on, and leads it knows (a
    subset is mapped by name as `ecgcl finetune --missing-leads` would, with the default policy). Returns a
    summary.
    """
    from ecgcl.data.store import open_store
    from ecgcl.engine.checkpoint import load_checkpoint, same_preprocessing
    from ecgcl.engine.device import select_device
    from ecgcl.engine.inference import compute_embeddings
    from ecgcl.engine.lead_mapping import lead_plan_for, slice_state
    from ecgcl.engine.model import encoder_from_meta

    out = Path(out)
    if out.suffix not in OUTPUT_SUFFIXES:
        raise EcgclError(f"--out {out} must end in {' or '.join(OUTPUT_SUFFIXES)}")
    targets = [out, _ids_path(out)] if out.suffix == ".npy" else [out]
    existing = [p for p in targets if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise EcgclError(f"output {existing[0]} already exists (choose another --out or pass --overwrite)")
    if any(p.is_dir() for p in existing):
        raise EcgclError(f"output {next(p for p in existing if p.is_dir())} is a folder; --out names a file")
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as error:
            raise EcgclError("parquet output needs pyarrow: pip install 'ecgcl[parquet]' (or use --out FILE.npy)") from error
    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    source = f"checkpoint {checkpoint_path}"
    checkpoint = load_checkpoint(checkpoint_path, registry=registry)
    state = encoder_state(checkpoint, source=source)
    meta = checkpoint["meta"]
    store = open_store(data)
    plan = lead_plan_for(meta, store, meta.get("missing_leads"), source=source, registry=registry)
    rows = select_rows(store, record_ids, source=record_source)
    encoder = encoder_from_meta(meta, registry, source=source, leads=list(plan.encoder_leads))
    encoder.load_state_dict(slice_state(state, encoder, plan, source=source) if plan.policy == "slice" else state)
    vectors = compute_embeddings(encoder, store, rows, window=meta["window"], representation=meta["representation"],
                                 batch_size=batch_size, device=select_device(device), lead_adapter=plan.adapter())
    metadata = store.metadata.iloc[rows].reset_index(drop=True)
    make_folders(out.parent, "output folder")
    if out.suffix == ".npy":
        ids = metadata[["record_id", "patient_id"]].astype(str)

        def vectors_then_ids(handle) -> None:
            # the ids go into place before the vectors are renamed: a failed write of either leaves no new .npy
            # beside older (or no) ids
            np.save(handle, vectors)
            atomic_write(_ids_path(out), lambda ids_handle: ids.to_csv(ids_handle, index=False),
                         what="embedding ids")

        atomic_write(out, vectors_then_ids, what="embeddings")
    else:
        import pandas as pd

        table = pd.concat([metadata, pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(vectors.shape[1])])],
                          axis=1)
        atomic_write(out, lambda handle: table.to_parquet(handle, index=False), what="embeddings")
    return {"checkpoint": str(checkpoint_path), "kind": checkpoint.get("kind"), "store": str(store.path),
            "records": int(len(rows)), "embed_dim": int(vectors.shape[1]), "out": str(out),
            "ids": str(_ids_path(out)) if out.suffix == ".npy" else None,
            "same_filter_as_training": same_preprocessing(meta, store)}


def _ids_path(out: Path) -> Path:
    return out.with_name(out.stem + ".ids.csv")
