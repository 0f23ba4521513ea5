"""The runtime context: facts the data and the run decide, passed to component factories that ask for them.

A factory whose signature names `fs` (Hz), `leads` (lead names), `length` (samples per input), `in_leads`
(lead count), `device` (torch device) or, for encoders, `embed_dim` gets the value of this run; a factory
that does not name one never sees it. Users never set these by hand (a one-line error says where the value
comes from) and components never guess them, so an augmentation working in Hz or seconds is right at any
sampling rate. For augmentations `length` is the samples per record; for encoders it is the length of the
input they are built for (the view length, or the FFT bins with `--input fft`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ecgcl.errors import EcgclError

RUNTIME_OPTIONS = {
    "fs": "sampling rate of the store in Hz",
    "leads": "lead names of the store, in order",
    "length": "samples per input (records for augmentations, the encoder's input otherwise)",
    "in_leads": "number of leads",
    "device": "the torch device training runs on",
    "embed_dim": "encoder output size (--embed-dim)",
    "projection_dim": "projection head output size (--projection-dim; objectives)",
    "encoder": "the encoder being pretrained (objectives; --encoder)",
    "augmentation": "the --aug augmentations, built (objectives)",
    "loss": "the --loss contrastive loss, built (objectives that take one)",
}
"""Every option the runtime provides, with what it holds; the one list other modules import."""


@dataclass(frozen=True)
class RuntimeContext:
    """The values of `RUNTIME_OPTIONS` for one run (None where not known, e.g. `embed_dim` outside encoders)."""

    fs: float | None = None
    leads: tuple[str, ...] | None = None
    length: int | None = None
    in_leads: int | None = None
    device: Any = None
    embed_dim: int | None = None
    projection_dim: int | None = None
    encoder: Any = None
    augmentation: Any = None
    loss: Any = None

    @classmethod
    def of_store(cls, store, device: Any = None) -> RuntimeContext:
        """The context of a store's records: its rate, lead names, lead count and samples per record."""
        _, in_leads, length = store.signals.shape
        return cls(fs=float(store.fs), leads=tuple(store.leads), length=int(length), in_leads=int(in_leads),
                   device=device)

    def replace(self, **changes: Any) -> RuntimeContext:
        return dataclasses.replace(self, **changes)

    def values(self) -> dict[str, Any]:
        """The known values, by option name (components themselves are passed as they are, never copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def origin(self, name: str) -> str:
        """Where a value comes from, for error messages: 'the store (500 Hz)'."""
        value = getattr(self, name)
        if name == "fs":
            shown = f"{value:g} Hz"
        elif name == "leads":
            shown = ",".join(value)
        elif name == "in_leads":
            shown = f"{value} leads"
        else:
            shown = str(value)
        if name in ("encoder", "augmentation", "loss"):
            return {"encoder": "--encoder", "augmentation": "--aug", "loss": "--loss"}[name]
        if name in ("embed_dim", "projection_dim"):
            return f"--{name.replace('_', '-')} ({shown})"
        if name == "device":
            return f"--device ({shown})"
        return f"the store ({shown})"


def create_component(registry, kind: str, name: str, options: dict[str, Any], context: RuntimeContext | None, *,
                     where: str) -> Any:
    """Build a registered component from the user's `options` plus the context values its factory names.

    An option the runtime provides, set by hand, is a one-line error naming it and `where` the user set it
    (`where` is a format string of `key`: "--encoder-arg {key}"). A third-party factory that raises is a one-line error naming its plugin.
    """
    from ecgcl.contracts import describe_component, plugin_failure

    component = registry.get(kind, name)
    provided = context.values() if context is not None else {}
    for key in options:
        if key in provided:
            raise EcgclError(f"{key} is set from {context.origin(key)}; remove {where.format(key=key)}")
    wanted = set(component.parameter_names())
    runtime = {k: v for k, v in provided.items() if k in wanted}
    try:
        return registry.create(kind, name, **options, **runtime)
    except EcgclError:
        raise
    except (TypeError, ValueError) as error:  # a factory validating its options with built-in exceptions
        raise EcgclError(f"{describe_component(component)}: {error}") from error
    except Exception as error:
        if component.source.name == "ecgcl":
            raise
        raise plugin_failure(component, "could not be built", error) from error


__all__ = ["RUNTIME_OPTIONS", "RuntimeContext", "create_component"]
