"""The run configuration: every training option declared once, read from the command line or a TOML file.

Each `RunConfig` field carries its command-line declaration (help text, which commands take it) in its
metadata; `ecgcl.cli.config_options` builds the click options from these fields, and a `--config` file fills
click's `default_map`, so an option given on the command line beats the config file, which beats the
defaults below. The resolved configuration is written to the results folder as `config.json`, which
`--config` (and `--resume`) accept back.
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
from ecgcl.methods import METHODS, method
from ecgcl.split_spec import SPLIT_STRATEGIES, parse_split

INPUTS = ("time", "fft")  # encoder input representations (`ecgcl.engine.inputs`)
MISSING_LEADS = ("zero", "slice")  # what an encoder gets for trained leads a store lacks (ecgcl.engine.lead_mapping)
PRELOAD_MODES = ("auto", "off", "ram", "device")  # `--preload` (see ecgcl.engine.preload)
TRAINING = ("run", "pretrain", "finetune")  # the commands that train a model


def option(default: Any = None, help: str = "", *, commands: tuple[str, ...] = TRAINING, flag: str | None = None,
           choices: tuple[str, ...] | None = None, factory: Any = None, repeatable: bool = False):
    """A config field and its command-line option: `help` text, the `commands` that take it, the option `flag`
    (default `--field-name`), the allowed `choices`, and whether a list is given by repeating the option
    (for values that contain commas themselves) instead of comma-separated."""
    metadata = {"help": help, "commands": commands, "flag": flag, "choices": choices, "repeatable": repeatable}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything `ecgcl run` needs; the defaults are small so the embedded sample runs in minutes on 2 cores.

    Component options (`encoder_args`, `loss_args`) hold only what the user set: each component's own
    signature gives its defaults. `aug` and `encoder` may each hold several values (a list): `ecgcl run` then
    runs a grid of cells, one per combination (see `ecgcl.protocol.sweep`).
    """

    data: str | None = option(None, "Store folder; without it, the small PTB-XL sample shipped with ecgcl.")
    task: str = option("normal_vs_abnormal", "Downstream task with options, e.g. has:AF, has:AF,vs=NSR, "
                              "labels:min=20, column:rhythm, superclasses (ecgcl list-plugins --kind task).")
    encoder: str | list[str] = option("cnn", "Registered encoder: cnn, cnn_lstm, cnn_attn_lstm, cnn_transformer ... "
                                             "(`run`: repeat the option for a grid).")
    encoder_args: dict[str, Any] = option(factory=dict, flag="--encoder-arg",
                                          help="Encoder option, repeatable (e.g. --encoder-arg width=32).")
    embed_dim: int = option(64, "Encoder output size.")
    objective: str | list[str] = option("contrastive", "Pretraining objective, e.g. byol, vicreg, cpc, jepa, "
                                        "masked:mask_ratio=0.6 (`run`: repeat for a grid).", commands=("run", "pretrain"))
    aug: str | list[str] | None = option(None, "Views (contrastive, byol, vicreg) or input perturbation (masked, jepa, "
                                               "cpc), e.g. permute+noise; default: the objective's own.")
    loss: str = option("ntxent", "Contrastive loss of the contrastive objective: ntxent or clocs_patient.")
    loss_args: dict[str, Any] = option(factory=dict, flag="--loss-arg", help="Loss option (temperature=0.1).")
    projection_dim: int = option(64, "Projection head output size.")
    input: str = option("time", "Encoder input: time samples or FFT magnitude.", choices=INPUTS)
    pretrain_epochs: int = option(10, "Self-supervised pretraining epochs (any --objective).")
    finetune_epochs: int = option(100, "Most epochs of end-to-end fine-tuning and supervised training; both stop "
                                       "earlier by --patience and keep their best validation epoch.")
    patience: int = option(10, "Epochs without a better validation AUROC before end-to-end training stops.")
    batch_size: int = option(64, "Batch size.", commands=(*TRAINING, "evaluate"))
    lr: float = option(1e-3, "Pretraining learning rate (AdamW).")
    finetune_lr: float = option(1e-3, "Fine-tuning learning rate (AdamW).")
    weight_decay: float = option(1e-5, "AdamW weight decay.")
    dropout: float = option(0.0, "Dropout before the classifier's linear layer.")
    seed: int = option(0, "Base seed; repeat k uses seed + k.")
    split: str = option("random", f"{' | '.join(SPLIT_STRATEGIES)}: patient draws per repeat, official PTB-XL "
                                  "folds (9 val, 10 test), or a store column of folds.")
    val_fraction: float = option(0.15, "Fraction of labelled patients for validation (--split random).")
    test_fraction: float = option(0.15, "Fraction of labelled patients for test (--split random).")
    val_folds: list[int] = option(factory=list, help="Comma-separated validation folds (ptbxl-folds: 9; column:NAME).")
    test_folds: list[int] = option(factory=list, help="Comma-separated test folds (ptbxl-folds: 10; column:NAME).")
    device: str = option("auto", "auto, cpu, cuda, cuda:1 or mps.", commands=(*TRAINING, "evaluate"))
    out: str = option("results", "Results folder.")
    repeats: int = option(3, "Number of repeated patient-level splits (K).", commands=("run",))
    label_fractions: list[float] = option(factory=lambda: [1.0], flag="--label-fraction", commands=("run",),
                                          help="Comma-separated label fractions, e.g. 0.01,0.1,1.0.")
    methods: list[str] = option(factory=lambda: list(METHODS), commands=("run",),
                                help=f"Comma-separated: {','.join(METHODS)}.")
    pretrained: list[str] = option(factory=list, commands=("run",), repeatable=True,
                                   help="A pretrained encoder to evaluate instead of pretraining: pretrain.pt, an "
                                        "exported folder or hf://ORG/NAME; several make a grid, one cell per encoder.")
    monitors: list[str] = option(factory=lambda: ["auto"], flag="--monitor", commands=("run", "pretrain"),
                                 repeatable=True,
                                 help="Pretraining monitors NAME[:k=v],...: rankme, knn, probe, align_uniform; auto = "
                                      "rankme, plus knn with labels; none.  [default: auto]")
    monitor_every: str = option("auto", "Monitor every N pretraining epochs and after the last; auto = as often as "
                                "costs about 10% of pretraining time.", commands=("run", "pretrain"))
    pretrain_select: str = option("last", "The pretraining epoch pretrain.pt keeps: last, or best:MONITOR (e.g. "
                                  "best:knn) on validation records.", commands=("run", "pretrain"))
    track: list[str] = option(factory=list, repeatable=True,
                              help="Experiment trackers NAME[:k=v],...: tensorboard, mlflow, wandb (pip install "
                                   "'ecgcl[NAME]'); history.jsonl is always written.")
    log_every: int = option(0, "Also report every N optimizer steps inside an epoch (0: once per epoch).")
    robustness: bool = option(False, "Also score the test records under missing leads, noise, baseline wander and "
                              "resampling (robustness.csv/json/png; the conditions are listed in docs/robustness.md).",
                              commands=("run", "evaluate"))
    robustness_extra: list[str] = option(factory=list, commands=("run", "evaluate"), repeatable=True,
                                         help="An extra robustness condition: any augmentation spec, e.g. "
                                              "baseline_wander:amplitude=0.5 (repeatable).")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `EcgclError` for values no run can use."""
        if self.input not in INPUTS:
            raise EcgclError(f"--input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        for name in self.methods:
            method(name)
        if not self.methods:
            raise EcgclError("--methods needs at least one method")
        for name in ("pretrain_epochs", "finetune_epochs", "patience", "batch_size", "repeats", "embed_dim",
                     "projection_dim", "log_every"):
            value = getattr(self, name)
            minimum = 0 if name in ("pretrain_epochs", "log_every") else 1
            if not isinstance(value, int) or value < minimum:
                raise EcgclError(f"{option_name(name)} must be an integer >= {minimum}, got {value!r}")
        for name in ("lr", "finetune_lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
                raise EcgclError(f"{option_name(name)} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise EcgclError(f"--dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32 - 1000:
            raise EcgclError(f"--seed must be an integer in [0, 2**32 - 1000), got {self.seed!r}")
        for name in ("label_fractions", "methods"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise EcgclError(f"{option_name(name)} lists a value twice: {values}")
        if not self.label_fractions or any(not 0 < f <= 1 for f in self.label_fractions):
            raise EcgclError(f"--label-fraction values must be in (0, 1], got {self.label_fractions}")
        for name in GRID_AXES:
            if name == "aug" and self.aug is None:
                continue
            values = grid_values(getattr(self, name))
            if not values or any(not isinstance(v, str) or not v.strip() for v in values):
                raise EcgclError(f"{option_name(name)} needs at least one non-empty value, got {getattr(self, name)!r}")
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise EcgclError(f"{option_name(name)} lists {', '.join(map(repr, twice))} twice; each grid value once")
        parse_split(self.split, self.val_folds, self.test_folds)
        parse_select(self.pretrain_select)
        parse_every(self.monitor_every)
        if self.robustness_extra and not self.robustness:
            raise EcgclError("--robustness-extra adds conditions to the robustness report; add --robustness")
        twice = sorted({p for p in self.pretrained if self.pretrained.count(p) > 1})
        if twice:
            raise EcgclError(f"--pretrained lists {', '.join(map(repr, twice))} twice; each encoder once")
        if self.pretrained and any(len(grid_values(getattr(self, axis))) > 1 for axis in GRID_AXES):
            raise EcgclError("--pretrained evaluates encoders whose model comes from their checkpoints; several "
                             "--objective, --aug or --encoder values (a grid) are for runs that pretrain")

    def check_methods(self) -> None:
        """For `ecgcl run`: every method must have what it needs (the pretrained ones need pretraining)."""
        if self.pretrain_epochs == 0 and self.needs_pretraining and not self.pretrained:
            raise EcgclError("--pretrain-epochs 0 leaves nothing to fine-tune; use --methods random_linear,supervised")

    @property
    def needs_pretraining(self) -> bool:
        """Whether a method of the run starts from the pretrained encoder."""
        return any(method(m).pretrained for m in self.methods)

    @property
    def is_grid(self) -> bool:
        """Several --objective, --aug or --encoder values (one cell per combination), or several --pretrained
        encoders (one cell per encoder): `ecgcl run` runs a grid."""
        return len(self.pretrained) > 1 or any(len(grid_values(getattr(self, axis))) > 1 for axis in GRID_AXES)

    def require_single(self, command: str) -> None:
        """Refuse a grid where only one configuration makes sense (`ecgcl pretrain`, `ecgcl finetune`)."""
        if self.is_grid:
            raise EcgclError(f"`ecgcl {command}` takes one --objective, one --aug and one --encoder; several values "
                             "(a grid) are for `ecgcl run`")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the resolved configuration as `config.json` in `folder`."""
        from ecgcl.files import atomic_write, make_folders

        path = Path(folder) / "config.json"
        make_folders(path.parent, "results folder")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), what="run configuration")


GRID_AXES = ("objective", "aug", "encoder")  # options whose several values make a grid, in cell-name order


def grid_values(value: str | list[str] | None) -> list[str | None]:
    """A grid axis (`objective`, `aug`, `encoder`) as a list: one string (or None) is a one-value axis."""
    return [value] if value is None or isinstance(value, str) else list(value)


FIELD_NAMES = tuple(f.name for f in fields(RunConfig))


def read_config_file(path: str | os.PathLike, accepted: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read a TOML (or JSON) config file into option values, with clear errors for bad keys, syntax or values.

    Keys are option names with `_` or `-` (`label_fractions` also accepts `label_fraction`); a `[run]` table
    may hold them instead of the top level; a `[space]` table (the search space of `ecgcl tune`, which reads it
    itself) is skipped. `accepted` names the options of the command reading the file
    (default: the `RunConfig` fields); a `RunConfig` field the command does not take (`repeats` for
    `ecgcl pretrain`, say) is left out, so a results folder's `config.json` serves every command.
    """
    path = Path(path)
    if not path.is_file():
        raise EcgclError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EcgclError(f"config file {path} is not a text file (expected TOML or JSON)") from None
    except OSError as error:
        raise EcgclError(f"config file {path} cannot be read: {error.strerror or error}") from None
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
    raw = {k: v for k, v in raw.items() if not (k == "space" and isinstance(v, dict))}  # `ecgcl tune`'s own table
    accepted = FIELD_NAMES if accepted is None else tuple(accepted)
    known = tuple(dict.fromkeys((*accepted, *FIELD_NAMES)))
    types = {f.name: f.type for f in fields(RunConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in known:
            name = {"label_fraction": "label_fractions", "method": "methods"}.get(name, name)
        if name not in known:
            raise EcgclError(f"config file {path}: unknown option {key!r}{did_you_mean(name, known)}")
        if name in accepted:
            values[name] = _coerce(name, value, types[name]) if name in types else value
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


def config_from_options(values: dict[str, Any]) -> RunConfig:
    """The `RunConfig` of a command's option values (its other options, such as `--mode`, are ignored)."""
    return resolve_config(None, {k: v for k, v in values.items() if k in FIELD_NAMES})


def option_name(field_name: str) -> str:
    """The command-line option of a config field (`label_fractions` -> `--label-fraction`)."""
    declared = {f.name: f.metadata.get("flag") for f in fields(RunConfig)}.get(field_name)
    return declared or "--" + field_name.replace("_", "-")


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
            if name == "monitor_every" and isinstance(value, int) and not isinstance(value, bool):
                return str(value)  # a TOML number
            if not isinstance(value, str):
                raise ValueError
            return value
        if annotation in ("str | list[str]", "str | list[str] | None"):
            if value is None and annotation.endswith("None"):
                return None
            if isinstance(value, str):
                return value
            items = [str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else _fail() for v in value]
            return items[0] if len(items) == 1 else items
        if annotation == "list[int]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [_whole(v) for v in items if str(v).strip()]
        if annotation == "str | None":
            return None if value in (None, "") else str(value)
        if annotation.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if annotation == "list[float]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [float(v) for v in items]
        if annotation == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if name in COMPONENT_LISTS:  # NAME[:k=v,...] specs, comma-separated or one per item
            return split_specs([value] if isinstance(value, str) else list(value))
        if name == "robustness_extra":  # augmentation specs contain commas: one spec per item
            return [str(v).strip() for v in ([value] if isinstance(value, str) else list(value)) if str(v).strip()]
        if annotation == "list[str]":
            items = value.split(",") if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]
    except (TypeError, ValueError):
        raise EcgclError(f"{option}: cannot use {value!r} (expected {annotation})") from None
    return value


LAST = "last"  # --pretrain-select that keeps the last epoch (and how a chosen epoch is described then)


def parse_select(text: str) -> str | None:
    """`--pretrain-select`: `last` -> None; `best:NAME` -> NAME (the monitor whose figure decides)."""
    text = str(text).strip()
    if text == LAST:
        return None
    kind, _, name = text.partition(":")
    if kind != "best" or not name.strip():
        raise EcgclError(f"--pretrain-select must be 'last' or 'best:MONITOR' (e.g. best:knn), got {text!r}")
    return name.strip()


def parse_every(text: str | int) -> int | None:
    """`--monitor-every`: `auto` -> None (chosen from the data sizes), else an integer >= 1."""
    if str(text).strip() == "auto":
        return None
    try:
        every = int(str(text).strip())
    except ValueError:
        every = 0
    if every < 1 or isinstance(text, bool) or isinstance(text, float):
        raise EcgclError(f"--monitor-every must be 'auto' or an integer >= 1, got {text!r}")
    return every


COMPONENT_LISTS = ("monitors", "track")  # options listing components with their options


def split_specs(values: list[Any]) -> list[str]:
    """Component specs from option values: `knn:k=10,rankme` -> ['knn:k=10', 'rankme']. A comma-separated item
    with `:` or without `=` starts a new spec; a `key=value` item belongs to the spec before it."""
    specs: list[str] = []
    for value in values:
        for item in (i.strip() for i in str(value).split(",")):
            if not item:
                continue
            if specs and "=" in item and ":" not in item:
                specs[-1] += f",{item}"
            else:
                specs.append(item)
    return specs


def _fail():
    raise ValueError


def _whole(value: Any) -> int:
    """An integer from an int, a whole float or a string of one (fold numbers)."""
    if isinstance(value, bool):
        raise ValueError
    number = float(str(value).strip()) if isinstance(value, str) else float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


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
