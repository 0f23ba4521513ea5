"""Parse `--aug` strings such as `permute:segments=5+noise:std=0.05` into a `Compose` of registered augmentations.

Grammar: parts joined by `+`, applied left to right; each part is `name` or `name:key=value,key=value`.
Values are read as int, float, bool (`true`/`false`), `none`, or else kept as text. An empty spec or `none`
is the identity. Unknown names and keys are answered with "did you mean" (through the registry).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation
from ecgcl.registry import Component, Registry

_INT = re.compile(r"^[+-]?\d+$")


class Compose(Augmentation):
    """Augmentations applied in order; itself an `Augmentation`, so it composes and draws views like one.

    For contrastive views (`views`), the parts before a view-pairing part (one with `pairs_views`, e.g.
    `clocs`) are applied once to the recording, that part forms the two views, and the parts after it are
    drawn independently for each view. Without a pairing part, every part is drawn independently per view.
    At most one part may pair views.
    """

    name = "compose"

    def __init__(self, parts: list[Augmentation] | tuple[Augmentation, ...] = (), spec: str = "",
                 components: tuple = ()) -> None:
        self.parts = tuple(parts)
        self.components = tuple(components) or (None,) * len(self.parts)  # the registry entries, for messages
        pairing = [p for p in self.parts if getattr(p, "pairs_views", False)]
        if len(pairing) > 1:
            names = ", ".join(p.name for p in pairing)
            raise EcgclError(f"augmentations: only one part may form the two views, got {names}")
        self.pairs_views = bool(pairing)
        self.spec = spec or "+".join(getattr(p, "name", "") or type(p).__name__ for p in self.parts) or "none"

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        for part in self.parts:
            batch = part(batch, generator)
        return batch

    def views(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two views for contrastive training (see the class docstring for where the pair is formed)."""
        if not self.pairs_views:
            return self(batch, generator), self(batch, generator)
        split = next(i for i, p in enumerate(self.parts) if getattr(p, "pairs_views", False))
        shared = Compose(self.parts[:split])(batch, generator)
        first, second = self.parts[split].views(shared, generator)
        after = Compose(self.parts[split + 1 :])
        return after(first, generator), after(second, generator)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for part in self.parts:
            shape = part.output_shape(shape) if hasattr(part, "output_shape") else shape
        return tuple(shape)

    def __len__(self) -> int:
        return len(self.parts)

    def describe(self) -> str:
        """The parts as built, with every option (runtime-provided ones included): `BaselineWander(fs=500.0, ...)`."""
        return " + ".join(repr(p) for p in self.parts) or "none"

    def __repr__(self) -> str:
        return f"Compose({self.spec!r})"


def parse_value(text: str) -> Any:
    """`5` -> 5, `0.05` -> 0.05, `true`/`false` -> bool, `none` -> None, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _INT.match(lowered):
        return int(lowered)
    try:
        return float(lowered)
    except ValueError:
        return text.strip()


def parse_part(part: str, kind: str = "augmentation", *, positional: bool = False,
               raw: bool = False) -> tuple[str, dict[str, Any]]:
    """`permute:segments=5,mode=lead` -> ("permute", {"segments": 5, "mode": "lead"}) (text values with `raw`).

    With `positional=True` a leading item without `=` (`has:AF`) is kept under the key `None`; it names the
    component's first parameter (see `build_component`).
    """
    name, _, options = part.partition(":")
    name = name.strip()
    if not name:
        raise EcgclError(f"{kind}: empty name in {part!r}; expected name or name:key=value,...")
    kwargs: dict[Any, Any] = {}
    for index, item in enumerate(filter(None, (o.strip() for o in options.split(",")))):
        key, equals, value = item.partition("=")
        if not equals and positional and index == 0:
            kwargs[None] = item
            continue
        if not equals or not key.strip():
            raise EcgclError(f"{kind} {name!r}: expected key=value, got {item!r}")
        if key.strip() in kwargs:
            raise EcgclError(f"{kind} {name!r}: option {key.strip()!r} is given twice")
        kwargs[key.strip()] = value.strip() if raw else parse_value(value)
    return name, kwargs


_TEXT_ANNOTATIONS = ("str", "str | None", "Optional[str]")


def build_component(registry: Registry, kind: str, part: str, *, positional: bool = False, context=None,
                    where: str = "") -> Any:
    """Build the registered component one spec part names (`noise:std=0.05`, or `has:AF,vs=NSR` for tasks).

    Values become int/float/bool/None with `parse_value`, except for parameters annotated `str`, which keep
    the text as given (so a class called `164889003` stays a string). Unknown names and options get the
    registry's "did you mean"; a factory that rejects a value with TypeError/ValueError becomes an EcgclError.
    `context` (an `ecgcl.context.RuntimeContext`) gives the factory the runtime values it names (`fs`,
    `leads`, ...); an option of the spec that the runtime provides is refused, naming `where` it was set.
    """
    from ecgcl.context import create_component

    name, raw = parse_part(part, kind, positional=positional, raw=True)
    component = registry.get(kind, name)
    parameters = {p.name: p for p in component.parameters}
    if None in raw:
        first = next(iter(parameters), None)
        if first is None or first in raw:
            raise EcgclError(f"{kind} {component.name!r}: {raw[None]!r} needs a key (key=value)")
        raw = {first: raw.pop(None), **raw}
    kwargs = {key: value if key in parameters and parameters[key].annotation in _TEXT_ANNOTATIONS
              and value.lower() != "none" else parse_value(value) for key, value in raw.items()}
    where = where or "{key}=... from " + part.strip()
    return create_component(registry, kind, name, kwargs, context, where=where)


def parse_augmentations(spec: str | None, registry: Registry, context=None) -> Compose:
    """Build the `Compose` that `spec` (e.g. `permute:segments=5+noise:std=0.05`) describes.

    `context` (an `ecgcl.context.RuntimeContext`) gives each part the runtime values its factory names (`fs`,
    `leads`, ...); without it, a factory's own defaults apply.
    """
    text = (spec or "").strip()
    if text.lower() in ("", "none"):
        return Compose((), "none")
    parts, components = [], []
    for raw in text.split("+"):
        if not raw.strip():
            raise EcgclError(f"augmentations: empty part in {spec!r}; join names with a single '+'")
        parts.append(build_component(registry, "augmentation", raw, context=context,
                                     where="{key}=... from --aug " + raw.strip()))
        components.append(registry.get("augmentation", parse_part(raw, "augmentation")[0]))
    return Compose(parts, text, tuple(components))


def spec_components(spec: str | None, registry: Registry, kind: str = "augmentation") -> tuple[Component, ...]:
    """The registry entries the parts of a `+`-joined spec name, in order, without building any.

    For reading what a component declares (an attribute of its factory, e.g. `masks_leads`) from a spec that a
    checkpoint recorded: a name that no installed plugin registers is left out, and `none` or an empty spec
    names nothing.
    """
    text = (spec or "").strip()
    if text.lower() in ("", "none"):
        return ()
    names = [parse_part(part, kind)[0] for part in text.split("+") if part.strip()]
    return tuple(registry.get(kind, name) for name in names if (kind, name) in registry)


def draw_views(augmentation: Augmentation, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two views of `batch` for contrastive training, drawn from `generator` (see `Augmentation.views`)."""
    return augmentation.views(batch, generator)


__all__ = ["Compose", "build_component", "draw_views", "parse_augmentations", "parse_part", "parse_value",
           "spec_components"]
