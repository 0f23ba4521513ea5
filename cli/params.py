"""Click parameter types. Torch and the plugins are imported only when a value is converted, so `--help` stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # pragma: no cover
    from ecgcl.compose import Compose
    from ecgcl.registry import Registry


class AugmentationSpec(click.ParamType):
    """An `--aug` value such as `permute:segments=5+noise:std=0.05`, parsed into an `ecgcl.compose.Compose`.

    Names and option keys are checked against the registry (with "did you mean"); a mistake becomes a
    click usage error (exit code 2) naming the option. `registry` defaults to the CLI's plugin manager.
    """

    name = "augmentations"

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Compose:
        from ecgcl.compose import Compose, parse_augmentations
        from ecgcl.errors import EcgclError

        if isinstance(value, Compose):
            return value
        if self.registry is None:
            from ecgcl.manager import get_registry

            registry = get_registry()
        else:
            registry = self.registry
        try:
            return parse_augmentations(str(value), registry)
        except EcgclError as error:
            self.fail(str(error), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "NAME[:KEY=VALUE,...][+NAME...]"


class KeyValue(click.ParamType):
    """One `KEY=VALUE` of a repeatable option such as `--encoder-arg`, as a `(key, value)` pair; values read as
    int, float, bool or text. A pair from a config file (already typed) passes through unchanged."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        from ecgcl.config import parse_key_values
        from ecgcl.errors import EcgclError

        if isinstance(value, tuple) and len(value) == 2:
            return value
        option = param.opts[0] if param is not None and param.opts else "option"
        try:
            return next(iter(parse_key_values([str(value)], option).items()))
        except EcgclError as error:
            self.fail(str(error), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "KEY=VALUE"


class CommaList(click.ParamType):
    """A comma-separated list on the command line (`0.01,0.1,1.0`), or a list from a config file."""

    name = "list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value)
        return [str(v).strip() for v in items if str(v).strip()]
