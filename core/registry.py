"""The registry: which augmentations, encoders, losses, tasks, objectives, readers, monitors and trackers exist, where they came from, how to build them.

One `Registry` belongs to one plugin manager (no module globals), so tests build fresh ones freely.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from ecgcl.context import RUNTIME_OPTIONS
from ecgcl.errors import EcgclError, UnknownComponentError, did_you_mean

# The component kinds and their plural, the one list every other place derives from: the hook that registers a
# kind is `register_<plural>` (ecgcl.hookspecs), and its built-ins live in `ecgcl.plugins.<plural>`.
KIND_PLURALS = {"augmentation": "augmentations", "encoder": "encoders", "loss": "losses", "task": "tasks",
                "objective": "objectives", "reader": "readers", "monitor": "monitors", "tracker": "trackers"}
KINDS = tuple(KIND_PLURALS)
KIND_HOOKS = {kind: f"register_{plural}" for kind, plural in KIND_PLURALS.items()}
BUILTIN_MODULES = tuple(f"ecgcl.plugins.{plural}" for plural in KIND_PLURALS.values())
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """One constructor argument of a component, read from its factory's signature."""

    name: str
    default: Any = None
    annotation: str = ""
    required: bool = False

    def describe(self) -> str:
        """`name=default`, or just `name` when it is required."""
        return self.name if self.required else f"{self.name}={self.default!r}"


@dataclass(frozen=True)
class Source:
    """The distribution that registered a component, and the plugin (entry point or built-in module) in it."""

    name: str
    version: str
    plugin: str = ""


@dataclass(frozen=True)
class Component:
    """A registered component: how to build it and where it came from."""

    name: str
    kind: str
    factory: Callable[..., Any]
    description: str
    parameters: tuple[Parameter, ...]
    source: Source
    aliases: tuple[str, ...] = field(default=())

    def factory_attribute(self, name: str):
        """An attribute a component declares on its factory (class attributes such as an objective's
        `takes_loss`, `needs`, `default_aug`); None when it declares none."""
        return getattr(self.factory, name, None)

    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def doc(self) -> str:
        """The factory's whole docstring (the description is its first line)."""
        return inspect.getdoc(self.factory) or self.description

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (used by `ecgcl list-plugins --json`)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "source": self.source.name,
            "version": self.source.version,
            "plugin": self.source.plugin,
            "aliases": list(self.aliases),
            "parameters": [
                {"name": p.name, "required": p.required, "default": _jsonable(p.default), "annotation": p.annotation,
                 "runtime": p.name in RUNTIME_OPTIONS}
                for p in self.parameters
            ],
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def signature_parameters(factory: Callable[..., Any]) -> tuple[Parameter, ...]:
    """The keyword parameters a factory accepts (positional-only and *args/**kwargs are left out)."""
    result = []
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        annotation = "" if p.annotation is _EMPTY else (p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation)))
        required = p.default is _EMPTY
        result.append(Parameter(p.name, None if required else p.default, annotation, required))
    return tuple(result)


def first_docstring_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class DuplicateComponentError(EcgclError):
    """Two plugins registered the same kind and name."""


class Registry:
    """Components by kind and name, with the distribution that registered each one."""

    def __init__(self) -> None:
        self._components: dict[tuple[str, str], Component] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self.current_source = Source("unknown", "")

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        kind: str,
        description: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
    ) -> Component:
        """Register `factory` under `kind`/`name`; the manager sets which distribution is registering."""
        if kind not in KINDS:
            raise EcgclError(f"cannot register {name!r}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        for label in (name, *aliases):
            if not isinstance(label, str) or not NAME_PATTERN.match(label):
                raise EcgclError(f"cannot register {kind} {label!r}: names must match [a-z][a-z0-9_]*")
            key = (kind, label)
            if key in self._components or key in self._aliases:
                existing = self._components.get(key) or self._components[(kind, self._aliases[key])]
                raise DuplicateComponentError(
                    f"{kind} {label!r} from {self.current_source.name} clashes with the one from {existing.source.name}"
                )
        if not callable(factory):
            raise EcgclError(f"cannot register {kind} {name!r}: factory {factory!r} is not callable")
        component = Component(
            name=name,
            kind=kind,
            factory=factory,
            description=description if description is not None else first_docstring_line(factory),
            parameters=signature_parameters(factory),
            source=self.current_source,
            aliases=tuple(aliases),
        )
        self._components[(kind, name)] = component
        for alias in aliases:
            self._aliases[(kind, alias)] = name
        return component

    def remove_source(self, source_name: str) -> None:
        """Drop everything one distribution registered (used when its plugin fails half-way)."""
        for key, component in list(self._components.items()):
            if component.source.name == source_name:
                del self._components[key]
                for alias in component.aliases:
                    self._aliases.pop((component.kind, alias), None)

    def get(self, kind: str, name: str) -> Component:
        """The component called `name` (or one of its aliases); unknown names get a 'did you mean'."""
        key = (kind, self._aliases.get((kind, name), name))
        if key not in self._components:
            known = self.names(kind)
            hint = did_you_mean(name, known) or (f"; known: {', '.join(known)}" if known else "; none is registered")
            raise UnknownComponentError(f"unknown {kind} {name!r}{hint}")
        return self._components[key]

    def create(self, kind: str, name: str, /, **kwargs: Any) -> Any:
        """Build a component, checking option names against its factory's parameters first."""
        component = self.get(kind, name)
        known = component.parameter_names()
        for key in kwargs:
            if key not in known:
                options = ", ".join(k for k in known if k not in RUNTIME_OPTIONS) or "none"
                raise EcgclError(
                    f"{kind} {component.name!r} has no option {key!r}{did_you_mean(key, known)}; options: {options}"
                )
        missing = [p.name for p in component.parameters if p.required and p.name not in kwargs]
        if missing:
            raise EcgclError(f"{kind} {component.name!r} needs option(s): {', '.join(missing)}")
        return component.factory(**kwargs)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(c.name for c in self.components(kind))

    def components(self, kind: str | None = None, pattern: str | None = None) -> list[Component]:
        """Components sorted by kind then name, optionally one kind and an fnmatch pattern on the name."""
        found = [
            c
            for c in self._components.values()
            if (kind is None or c.kind == kind) and (pattern is None or fnmatchcase(c.name, pattern))
        ]
        return sorted(found, key=lambda c: (KINDS.index(c.kind), c.name))

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components())

    def __len__(self) -> int:
        return len(self._components)

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return (kind, self._aliases.get((kind, name), name)) in self._components
