"""The run configuration: defaults, a TOML (or JSON) config file, command-line overrides, saved with results.

Precedence: an option given on the command line beats the config file, which beats the defaults below.
The resolved configuration is written to the results folder as `config.json`, which `--config` accepts back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ecgcl.errors import EcgclError, did_you_mean

METHODS = ("pretrained_finetune", "pretrained_linear", "random_linear", "supervised")
INPUTS = ("time", "fft")


@dataclass
class RunConfig:
    """Everything `ecgcl run` needs; the defaults are small so the embedded sample runs in minutes on 2 cores."""

    data: str | None = None  # store folder; None = the small PTB-XL sample shipped in the package
    task: str = "normal_vs_abnormal"
    encoder: str = "cnn"
    encoder_args: dict[str, Any] = field(default_factory=lambda: {"width": 16, "depth": 3})  # narrow: fast on 2 CPU cores
    embed_dim: int = 64
    aug: str = "permute+noise"
    loss: str = "ntxent"
    loss_args: dict[str, Any] = field(default_factory=dict)
    projection_dim: int = 64
    input: str = "time"  # "time" samples or "fft" magnitude spectrum
    pretrain_epochs: int = 5
    finetune_epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    finetune_lr: float = 1e-3
    weight_decay: float = 1e-5
    dropout: float = 0.0
    repeats: int = 3
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    label_fractions: list[float] = field(default_factory=lambda: [1.0])
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    device: str = "auto"
    out: str = "results"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `EcgclError` for values no run can use."""
        if self.input not in INPUTS:
            raise EcgclError(f"--input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        for method in self.methods:
            if method not in METHODS:
                raise EcgclError(f"unknown method {method!r}{did_you_mean(method, METHODS)}; choose from {', '.join(METHODS)}")
        if not self.methods:
            raise EcgclError("--methods needs at least one method")
        for name in ("pretrain_epochs", "finetune_epochs", "batch_size", "repeats", "embed_dim", "projection_dim"):
            value = getattr(self, name)
            minimum = 0 if name == "pretrain_epochs" else 1
            if not isinstance(value, int) or value < minimum:
                raise EcgclError(f"{option_name(name)} must be an integer >= {minimum}, got {value!r}")
        for name in ("lr", "finetune_lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
                raise EcgclError(f"{option_name(name)} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32 - 1000:
            raise EcgclError(f"--seed must be an integer in [0, 2**32 - 1000), got {self.seed!r}")
        for name in ("label_fractions", "methods"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise EcgclError(f"{option_name(name)} lists a value twice: {values}")
        if not self.label_fractions or any(not 0 < f <= 1 for f in self.label_fractions):
            raise EcgclError(f"--label-fraction values must be in (0, 1], got {self.label_fractions}")
        if self.pretrain_epochs == 0 and any(m.startswith("pretrained") for m in self.methods):
            raise EcgclError("--pretrain-epochs 0 leaves nothing to fine-tune; use --methods random_linear,supervised")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the resolved configuration as `config.json` in `folder`."""
        path = Path(folder) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path


FIELD_NAMES = tuple(f.name for f in fields(RunConfig))


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (or JSON) config file into option values, with clear errors for bad keys or syntax.

    Keys are option names with `_` or `-` (`label_fractions` also accepts `label_fraction`); a `[run]` table
    may hold them instead of the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise EcgclError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise EcgclError(f"config file {path} is not valid JSON: {error}") from error
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError as error:
                raise EcgclError("reading TOML config files on Python 3.10 needs `pip install tomli`; "
                                 "or pass the options on the command line") from error
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise EcgclError(f"config file {path} is not valid TOML: {error}") from error
    if not isinstance(raw, dict):
        raise EcgclError(f"config file {path} must hold a table of options, not a {type(raw).__name__}")
    if isinstance(raw.get("run"), dict):
        raw = {**{k: v for k, v in raw.items() if k != "run"}, **raw["run"]}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        name = {"label_fraction": "label_fractions", "method": "methods"}.get(name, name)
        if name not in FIELD_NAMES:
            raise EcgclError(f"config file {path}: unknown option {key!r}{did_you_mean(name, FIELD_NAMES)}")
        values[name] = value
    return values


def resolve_config(file_values: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the config file, then the command-line `overrides` (None values mean "not given")."""
    merged: dict[str, Any] = {}
    merged.update(file_values or {})
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    types = {f.name: f.type for f in fields(RunConfig)}
    for name, value in merged.items():
        merged[name] = _coerce(name, value, types[name])
    return RunConfig(**merged)


CLI_NAMES = {"label_fractions": "label-fraction", "encoder_args": "encoder-arg", "loss_args": "loss-arg"}


def option_name(field_name: str) -> str:
    """The command-line option of a config field (`label_fractions` -> `--label-fraction`)."""
    return "--" + CLI_NAMES.get(field_name, field_name.replace("_", "-"))


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Check and convert one value to the field's type, naming the option when it cannot."""
    option = option_name(name)
    try:
        if annotation == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if annotation == "float":
            return float(value)
        if annotation == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if annotation == "str | None":
            return None if value in (None, "") else str(value)
        if annotation.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if annotation == "list[float]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [float(v) for v in items]
        if annotation == "list[str]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]
    except (TypeError, ValueError):
        raise EcgclError(f"{option}: cannot use {value!r} (expected {annotation})") from None
    return value


def parse_key_values(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, Any]:
    """Parse `key=value` pairs (values as int, float, bool or string) for options such as `--encoder-arg`."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise EcgclError(f"{option} expects key=value, got {pair!r}")
        result[key.strip()] = _literal(text.strip())
    return result


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
