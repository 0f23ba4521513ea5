"""A pretrained encoder given by the user (`finetune --checkpoint`, `run --pretrained`): its weights and metadata,
checked against the model options the user also set."""

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
