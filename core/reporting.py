"""How core tells its caller what is happening: training events and progress, heard by listeners.

Core never prints. Long-running functions (ingest, pretraining, fine-tuning, the protocol) take a `reporter` and
call it: a `Reporter` whose methods do nothing by default. The training loops emit one record per finished epoch
(`epoch`) and, with `--log-every N`, one per N optimizer steps (`step`); a run also says when it starts and what
it wrote (`run_started`, `run_finished`). `Listeners` passes every event to several reporters at once (the CLI's
display, the `history.jsonl` writer, monitors' warnings, experiment trackers): a listener marked `fallible` that
raises is dropped with one warning, so a logging error never loses a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Reporter:
    """Progress callbacks; every method is optional for a subclass, and the base class ignores them all."""

    fallible: bool = False  # True: an exception from this listener is a warning, and it hears nothing more

    def stage(self, description: str, total: int) -> None:
        """A unit of work starts: a training stage of `total` epochs ('repeat 1 · pretrain'), or `total`
        records to ingest."""

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        """A training epoch finished (called after its checkpoint is written). `record` holds the epoch's figures
        (loss, monitors, validation AUROC, `lr`, `ecgs_per_s`, `seconds`) and `unit`, the unit's name."""

    def step(self, stage: str, step: int, steps: int, record: dict[str, Any]) -> None:
        """Every `--log-every` optimizer steps inside an epoch: `step` of `steps` in the epoch, the running loss."""

    def advance(self, completed: int, info: dict[str, Any]) -> None:
        """Progress inside the current stage that is not an epoch: `completed` items so far (ingested records),
        with a few figures to show (`rate`, `skipped`)."""

    def message(self, text: str) -> None:
        """A one-line note (a unit skipped because it finished earlier, ...)."""

    def warning(self, text: str) -> None:
        """A one-line warning (a collapsing representation, a tracker dropped); a message by default."""
        self.message(f"warning: {text}")

    def finished(self, note: str) -> None:
        """The current stage ended, perhaps before its last epoch (`note`: how, e.g. 'stopped: patience')."""

    def run_started(self, out: Path, config: dict[str, Any]) -> None:
        """A run writing into results folder `out` starts with the resolved `config`."""

    def run_finished(self, artifacts: list[Path]) -> None:
        """The run ended and wrote `artifacts` (tables, plots, config.json, summary.json)."""


class Listeners(Reporter):
    """Every event goes to each listener in turn; a `fallible` listener that raises is dropped after one warning
    (to the others), and the run goes on."""

    def __init__(self, listeners: list[Reporter]) -> None:
        self.listeners = list(listeners)

    def _each(self, method: str, *args: Any) -> None:
        for listener in list(self.listeners):
            try:
                getattr(listener, method)(*args)
            except Exception as error:
                if not listener.fallible:
                    raise
                self.listeners.remove(listener)
                name = getattr(listener, "name", type(listener).__name__)
                self.warning(f"{name} failed ({type(error).__name__}: {error}) and is dropped; the run goes on")

    def stage(self, description: str, total: int) -> None:
        self._each("stage", description, total)

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        self._each("epoch", stage, epoch, epochs, record)

    def step(self, stage: str, step: int, steps: int, record: dict[str, Any]) -> None:
        self._each("step", stage, step, steps, record)

    def advance(self, completed: int, info: dict[str, Any]) -> None:
        self._each("advance", completed, info)

    def message(self, text: str) -> None:
        self._each("message", text)

    def warning(self, text: str) -> None:
        self._each("warning", text)

    def finished(self, note: str) -> None:
        self._each("finished", note)

    def run_started(self, out: Path, config: dict[str, Any]) -> None:
        self._each("run_started", out, config)

    def run_finished(self, artifacts: list[Path]) -> None:
        self._each("run_finished", artifacts)


__all__ = ["Listeners", "Reporter"]
