"""Click options built from the `RunConfig` declarations, and the command class that reads `--config`.

Every training option is declared once, as a field of `ecgcl.config.RunConfig` (help text, the commands
taking it); `config_options("run")` turns those fields into click options with the real defaults. A
`ConfigCommand` fills click's `default_map` from `--config FILE` (or, with `--resume`, from `OUT/config.json`)
before parsing, so the precedence is click's own: command line, then config file, then default.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import click
from click.core import ParameterSource

from ecgcl.cli.params import CommaList, KeyValue
from ecgcl.config import GRID_AXES, RunConfig
from ecgcl.errors import EcgclError

_TYPES = {"int": int, "float": float, "str": str, "str | None": str}


def _merge_with_file(ctx: click.Context, param: click.Parameter, value: tuple) -> dict[str, Any]:
    """`--encoder-arg a=1 --encoder-arg b=2` as a dict; pairs given on the command line add to the config file's."""
    pairs = dict(value or ())
    if ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE and param.name in (ctx.default_map or {}):
        pairs = {**dict(ctx.default_map[param.name]), **pairs}
    return pairs


def _grid_axis(ctx: click.Context, param: click.Parameter, value: tuple) -> str | list[str] | None:
    """A repeatable option that is a grid axis (`--objective`, `--aug`, `--encoder`): one value as text, several as
    a list."""
    values = list(value or ())
    return None if not values else values[0] if len(values) == 1 else values


def _config_option(f) -> tuple[list[str], dict[str, Any]]:
    """The click declaration (names, keyword arguments) of one `RunConfig` field's option."""
    meta = f.metadata
    default = f.default if f.default is not MISSING else f.default_factory()
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    kwargs: dict[str, Any] = {"help": meta["help"], "show_default": default not in (None, [])}
    if f.type.startswith("dict"):
        kwargs.update(type=KeyValue(), multiple=True, default=tuple(default.items()), callback=_merge_with_file,
                      show_default=False)
    elif f.name in GRID_AXES:  # a grid axis: repeat the option for several values
        kwargs.update(type=str, multiple=True, default=() if default is None else (default,), callback=_grid_axis)
    elif f.type == "bool":
        kwargs.update(is_flag=True, default=default, show_default=False)
    elif meta.get("repeatable"):  # one value per use of the option (the values may contain commas)
        kwargs.update(type=str, multiple=True, default=tuple(default), show_default=False)
    elif f.type.startswith("list"):  # shown and typed as on the command line: comma-separated
        kwargs.update(type=CommaList(), default=",".join(map(str, default)))
    elif meta.get("choices"):
        kwargs.update(type=click.Choice(meta["choices"]), default=default)
    elif f.name == "out":
        kwargs.update(type=click.Path(file_okay=False), default=default)
    else:
        kwargs.update(type=_TYPES[f.type], default=default)
    return [flag, f.name], kwargs


def config_options(command: str):
    """Decorator adding `--config` and every `RunConfig` option that `command` takes, in declaration order."""

    def decorate(func):
        declared = [(["--config", "config_file"], {"type": click.Path(dir_okay=False),
                                                    "help": "TOML (or JSON) config file."})]
        declared += [_config_option(f) for f in fields(RunConfig) if command in f.metadata["commands"]]
        for names, kwargs in reversed(declared):
            func = click.option(*names, **kwargs)(func)
        return func

    return decorate


def resume_options(func):
    """`--resume` / `--overwrite`, meaning the same in every command that writes a results folder."""
    func = click.option("--overwrite", is_flag=True,
                        help="Discard earlier results in --out and start again.")(func)
    return click.option("--resume", is_flag=True,
                        help="Continue the work in --out with its saved settings (OUT/config.json is the config; "
                             "options given here override it).")(func)


class ConfigCommand(click.Command):
    """A command whose options may come from `--config FILE`, or with `--resume` from `OUT/config.json`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        raw, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        if not raw.get("help"):
            path = self._config_path(raw)
            if path is not None:
                from ecgcl.config import read_config_file

                accepted = tuple(p.name for p in self.params if p.name not in ("config_file", "resume", "overwrite"))
                ctx.default_map = {**(ctx.default_map or {}), **read_config_file(path, accepted)}
                for name, value in ctx.default_map.items():
                    if isinstance(value, dict):  # option dicts are repeatable KEY=VALUE options on the command line
                        ctx.default_map[name] = tuple(value.items())
                    elif isinstance(value, str) and name in GRID_AXES:  # one grid value: a one-item repeat
                        ctx.default_map[name] = (value,)
        return super().parse_args(ctx, args)

    @staticmethod
    def _config_path(raw: dict[str, Any]) -> str | None:
        config_file = raw.get("config_file")
        if not raw.get("resume"):
            return config_file
        if raw.get("overwrite"):
            raise EcgclError("--resume and --overwrite contradict each other")
        if config_file:
            raise EcgclError("--resume takes the settings from OUT/config.json; drop --config")
        from pathlib import Path

        saved = Path(raw.get("out") or RunConfig().out) / "config.json"
        if not saved.is_file():
            raise EcgclError(f"--resume: {saved} does not exist (nothing to resume)")
        return str(saved)


def given_options(ctx: click.Context) -> dict[str, Any]:
    """The option values this invocation set (on the command line or in the config file), not defaults."""
    return {name: value for name, value in ctx.params.items()
            if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
