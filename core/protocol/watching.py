"""Watching a run: the monitors pretraining runs, the epoch it keeps, and the listeners that hear every epoch
(the caller's display, `history.jsonl`, experiment trackers).

`resolve_monitors` turns `--monitor` / `--pretrain-select` into monitor objects and a `Selection` before anything
is written, refusing what cannot work (a label-based monitor without labels, `best:` a monitor that is off).
`run_listeners` puts the caller's reporter, the history file and the `--track` trackers behind one `Listeners`:
a tracker that raises becomes one warning and is dropped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ecgcl.config import RunConfig, parse_select
from ecgcl.errors import EcgclError
from ecgcl.reporting import Listeners, Reporter

AUTO, NONE = "auto", "none"
LABEL_FREE_DEFAULT, LABELLED_DEFAULT = ("rankme",), ("knn",)  # what `--monitor auto` runs
HISTORY_FILE = "history.jsonl"


def monitor_specs(config: RunConfig, labelled: bool) -> list[str]:
    """The monitor specs a run uses: `auto` is rankme, plus knn where a task has labels; `none` is none."""
    specs: list[str] = []
    for spec in config.monitors:
        if spec == AUTO:
            specs += [*LABEL_FREE_DEFAULT, *(LABELLED_DEFAULT if labelled else ())]
        elif spec != NONE:
            specs.append(spec)
    return list(dict.fromkeys(specs))


def resolve_monitors(config: RunConfig, registry, *, labelled: bool, two_views: bool,
                     why_unlabelled: str = "") -> tuple[dict[str, Any], Any]:
    """The monitors (name -> Monitor) and the `Selection` of `--pretrain-select` (None: the last epoch).

    `labelled`: a task with labels and held-out validation records exists; `two_views`: the objective trains on
    two views (alignment / uniformity need them). Every refusal is one line naming the option.
    """
    from ecgcl.compose import build_component
    from ecgcl.engine.selection import Selection

    monitors: dict[str, Any] = {}
    for spec in monitor_specs(config, labelled):
        monitor = build_component(registry, "monitor", spec, where="--monitor " + spec.partition(":")[0] + ":{key}=...")
        name = registry.get("monitor", spec.partition(":")[0].strip()).name
        if getattr(monitor, "needs_labels", False) and not labelled:
            raise EcgclError(f"--monitor {name} scores validation records of a labelled task; "
                             f"{why_unlabelled or 'this run has none'}")
        if getattr(monitor, "needs_views", False) and not two_views:
            raise EcgclError(f"--monitor {name} measures two augmented views; objective {config.objective!r} does "
                             "not train on two views (contrastive, byol and vicreg do)")
        monitors[name] = monitor
    chosen = parse_select(config.pretrain_select)
    if chosen is None:
        return monitors, None
    if chosen not in monitors:
        on = ", ".join(monitors) or "none"
        hint = f"; {why_unlabelled}" if not labelled and chosen in LABELLED_DEFAULT else ""
        raise EcgclError(f"--pretrain-select best:{chosen}: monitor {chosen!r} is not on (monitors: {on}); add "
                         f"--monitor {chosen}{hint}")
    monitor = monitors[chosen]
    return monitors, Selection(f"best:{chosen}", getattr(monitor, "primary", "") or chosen,
                               bool(getattr(monitor, "higher_is_better", True)))


class HistoryFile(Reporter):
    """Appends every epoch's record (unit, stage, epoch, losses, monitors, lr, ECGs/s, seconds) as one JSON line
    to `OUT/history.jsonl`; a resumed run appends its new epochs."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / HISTORY_FILE

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        line = {"unit": record.get("unit", ""), "stage": stage, "epochs": epochs, **record}
        line = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in line.items()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def read_history(out: Path) -> list[dict[str, Any]]:
    """The records of `OUT/history.jsonl`, the latest record of each (unit, epoch) only (a unit run again after
    an interruption wrote its epochs twice); empty when there is no file."""
    path = Path(out) / HISTORY_FILE
    if not path.is_file():
        return []
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
        if isinstance(record, dict) and "epoch" in record:
            latest[(str(record.get("unit")), str(record.get("stage")), int(record["epoch"]))] = record
    return list(latest.values())


class TrackerListener(Reporter):
    """An `ecgcl.interfaces.Tracker` as a listener: each unit's epochs become its logged figures."""

    fallible = True

    def __init__(self, name: str, tracker: Any) -> None:
        self.name, self.tracker, self.unit = f"tracker {name}", tracker, None

    def run_started(self, out: Path, config: dict[str, Any]) -> None:
        self.tracker.start(Path(out), config)

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        unit = record.get("unit") or stage
        if self.unit is not None and unit != self.unit:
            self.tracker.unit_finished(self.unit)
        self.unit = unit
        figures = {k: float(v) for k, v in record.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}
        self.tracker.log(unit, epoch, figures)

    def finished(self, note: str) -> None:
        if self.unit is not None:
            self.tracker.unit_finished(self.unit)
            self.unit = None

    def run_finished(self, artifacts: list[Path]) -> None:
        self.finished("")
        self.tracker.finish([Path(a) for a in artifacts if Path(a).is_file()])


def build_trackers(config: RunConfig, registry) -> list[TrackerListener]:
    """The `--track` trackers, built now so an unknown name, a bad option or a missing extra fails before
    training (one line each)."""
    from ecgcl.compose import build_component

    listeners = []
    for spec in config.track:
        name = registry.get("tracker", spec.partition(":")[0].strip()).name
        listeners.append(TrackerListener(name, build_component(registry, "tracker", spec,
                                                               where=f"--track {name}:" + "{key}=...")))
    return listeners


def run_listeners(display: Reporter | None, out: Path, trackers: list[TrackerListener]) -> Listeners:
    """The caller's display, then `history.jsonl` in `out`, then the trackers, as one listener."""
    return Listeners([display or Reporter(), HistoryFile(out), *trackers])


__all__ = ["HISTORY_FILE", "HistoryFile", "TrackerListener", "build_trackers", "monitor_specs", "read_history",
           "resolve_monitors", "run_listeners"]
