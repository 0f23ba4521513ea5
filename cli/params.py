"""Click parameter types for option values (key=value pairs, comma lists); they import neither torch nor the
plugins, so `--help` stays fast."""

from __future__ import annotations

from typing import Any

import click


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
