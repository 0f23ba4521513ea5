"""A pretrained encoder given by the user (`finetune --checkpoint`, `run --pretrained`): its weights and metadata,
checked against the model options the user also set, and the store mapped onto its rate and length."""

from __future__ import annotations

from typing import Any

from ecgcl.config import option_name
from ecgcl.errors import EcgclError


def checkpoint_model(checkpoint: str, given: dict[str, Any], registry=None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The encoder state and meta of a pretrained `checkpoint`; refuses model options in `given` (the options
    the user set, by config field name) that contradict it."""
    from ecgcl.engine.checkpoint import check_encoder_matches, load_checkpoint_of_kind

    source = f"checkpoint {checkpoint}"
    saved = load_checkpoint_of_kind(checkpoint, "encoder", needed_by="--checkpoint needs a pretrained encoder "
                                    "(pretrain.pt)", registry=registry)
    meta = saved["meta"]
    if given.get("encoder"):
        check_encoder_matches(meta, given["encoder"], source=source)
    conflicts = [f"{option_name('encoder_args')} {k}={v!r} (checkpoint: {meta['encoder_args'].get(k)!r})"
                 for k, v in (given.get("encoder_args") or {}).items() if meta["encoder_args"].get(k) != v]
    for name, saved_value in (("embed_dim", meta["embed_dim"]), ("input", meta["representation"])):
        value = given.get(name)
        if value is not None and value != saved_value:
            conflicts.append(f"{option_name(name)} {value!r} (checkpoint: {saved_value!r})")
    if conflicts:
        raise EcgclError(f"{source} fixes the model; these options contradict it: {'; '.join(conflicts)}")
    return saved["encoder"], meta


__all__ = ["checkpoint_model"]


def adopt_store(exp: Any, meta: dict[str, Any], *, source: str, notes: list[str] | None = None) -> None:
    """Replace `exp.store` by the store as the encoder of `meta` takes it (another rate resampled, records
    shorter than its window padded: `ecgcl.data.adapt.adapt_to_encoder`) and its runtime context; what was
    mapped is reported once through `exp.reporter` and appended to `notes`."""
    from ecgcl.data.adapt import adapt_to_encoder

    exp.store, note = adapt_to_encoder(exp.store, meta, source=source)
    if note is None:
        return
    if exp.context is not None:
        exp.context = exp.context.replace(fs=float(exp.store.fs), length=int(exp.store.signals.shape[2]))
    exp.reporter.message(note)
    if notes is not None:
        notes.append(note)
