"""The search space of `ecgcl tune`: the `[space]` table of a TOML config, checked before any trial runs.

Each entry is `name = {low = .., high = .., log = true, step = ..}` (an int range when both ends are ints, else a
float range) or `name = {choices = [...]}`. A name is a `RunConfig` field (`lr`, `pretrain_epochs`, `aug`...) or
`component.option` for the `objective`, `encoder` or `loss` the base config names, checked against that
component's factory signature (options the runtime provides, such as `embed_dim`, are not searched there).
`Space.suggest(trial)` draws one point through Optuna's define-by-run API
(Akiba et al., "Optuna", KDD 2019) and returns it as `RunConfig` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecgcl.config import FIELD_NAMES, RunConfig, resolve_config
from ecgcl.errors import EcgclError, did_you_mean

COMPONENTS = {"objective": "objective", "encoder": "encoder_args", "loss": "loss_args"}  # component -> where it goes
FIXED = ("data", "out", "device", "repeats", "seed", "split", "val_folds", "test_folds", "task", "methods",
         "label_fractions", "monitors", "monitor_every", "track", "log_every", "robustness", "robustness_extra",
         "encoder_args", "loss_args")  # what a trial does not search: where it runs, what it scores, how it is told
TUNABLE = tuple(f for f in FIELD_NAMES if f not in FIXED)


@dataclass(frozen=True)
class Dimension:
    """One searched value: a range (`low`..`high`, optionally log-scaled or stepped) or a list of `choices`."""

    name: str
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)

    def ends(self) -> list[Any]:
        """The values a check must accept: both ends of a range, every choice."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass(frozen=True)
class Space:
    """The dimensions of a study and the base config they change."""

    dimensions: tuple[Dimension, ...]
    base: RunConfig

    def suggest(self, trial) -> dict[str, Any]:
        """`RunConfig` overrides for one trial: plain fields directly; `objective.X` into the objective spec,
        `encoder.X` into `encoder_args`, `loss.X` into `loss_args`."""
        return overrides(self.base, {d.name: d.suggest(trial) for d in self.dimensions})


def overrides(base: RunConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The `RunConfig` overrides that set `values` (space names -> values) on `base`."""
    from ecgcl.compose import parse_part

    result: dict[str, Any] = {}
    name, options = parse_part(base.objective, "objective", raw=True)
    encoder_args, loss_args = dict(base.encoder_args), dict(base.loss_args)
    for key, value in values.items():
        component, dot, option = key.partition(".")
        if not dot:
            result[key] = value
        elif component == "objective":
            options[option] = str(value).lower() if isinstance(value, bool) else str(value)
            result["objective"] = name + ":" + ",".join(f"{k}={v}" for k, v in options.items())
        else:
            (encoder_args if component == "encoder" else loss_args)[option] = value
            result[COMPONENTS[component]] = encoder_args if component == "encoder" else loss_args
    return result


def parse_space(table: Any, base: RunConfig, registry) -> Space:
    """The `Space` of a `[space]` table; every mistake is one `EcgclError` line naming the entry."""
    if base.is_grid:
        raise EcgclError("ecgcl tune searches around one configuration: give one --objective, --aug and --encoder")
    if not isinstance(table, dict) or not table:
        raise EcgclError("ecgcl tune needs a [space] table in --config, e.g. lr = {low = 1e-4, high = 1e-2, log = true}")
    dimensions = tuple(_dimension(name, entry, base, registry) for name, entry in table.items())
    return Space(dimensions, base)


def _dimension(name: str, entry: Any, base: RunConfig, registry) -> Dimension:
    where = f"[space] {name}"
    _check_name(name, base, registry)
    if not isinstance(entry, dict):
        raise EcgclError(f"{where}: expected a table {{low = .., high = ..}} or {{choices = [...]}}, got {entry!r}")
    unknown = sorted(set(entry) - {"low", "high", "log", "step", "choices"})
    if unknown:
        raise EcgclError(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], ['low', 'high', 'log', 'step', 'choices'])}")
    if "choices" in entry:
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices:
            raise EcgclError(f"{where}: choices must be a non-empty list, got {choices!r}")
        dimension = Dimension(name, choices=tuple(choices))
    elif "low" in entry and "high" in entry:
        low, high, log, step = entry["low"], entry["high"], entry.get("log", False), entry.get("step")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)):
            raise EcgclError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
        if low > high:
            raise EcgclError(f"{where}: low {low!r} is greater than high {high!r}")
        if not isinstance(log, bool):
            raise EcgclError(f"{where}: log must be true or false, got {log!r}")
        if log and low <= 0:
            raise EcgclError(f"{where}: log = true needs low > 0, got {low!r}")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or log):
            raise EcgclError(f"{where}: step must be a number > 0 (and cannot go with log = true), got {step!r}")
        dimension = Dimension(name, low, high, log, step)
    else:
        raise EcgclError(f"{where}: give low and high (a range) or choices (a list)")
    for value in dimension.ends():  # a value the config refuses fails now, not in the middle of the study
        try:
            resolve_config({**base.to_dict(), **overrides(base, {name: value})})
        except EcgclError as error:
            raise EcgclError(f"{where}: value {value!r} is not usable: {error}") from None
    return dimension


def _check_name(name: str, base: RunConfig, registry) -> None:
    """Refuse a name that is neither a tunable `RunConfig` field nor an option of the chosen component."""
    from ecgcl.compose import parse_part
    from ecgcl.context import RUNTIME_OPTIONS

    component, dot, option = name.partition(".")
    if not dot:
        if name not in TUNABLE:
            known = [*TUNABLE, *(f"{c}.OPTION" for c in COMPONENTS)]
            why = " (fixed for the whole study)" if name in FIELD_NAMES else ""
            raise EcgclError(f"[space] {name}: not a searchable option{why}{did_you_mean(name, known)}")
        return
    if component not in COMPONENTS:
        raise EcgclError(f"[space] {name}: {component!r} is not a component; use objective.X, encoder.X or loss.X"
                         f"{did_you_mean(component, list(COMPONENTS))}")
    chosen = {"objective": parse_part(base.objective, "objective", raw=True)[0], "encoder": base.encoder,
              "loss": base.loss}[component]
    known = [p for p in registry.get(component, chosen).parameter_names() if p not in RUNTIME_OPTIONS]
    if option not in known:
        raise EcgclError(f"[space] {name}: {component} {chosen!r} has no option {option!r}{did_you_mean(option, known)}")
