"""Progress for people and for batch jobs: rich bars on a terminal (`RichReporter`, `IngestReporter`), plain lines
when output goes to a file (`PlainReporter`, `PlainIngestReporter`); all are `ecgcl.reporting.Reporter`s.
`training_progress` / `ingest_progress` pick one by whether the console is a terminal."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from ecgcl.reporting import Reporter

NOT_SHOWN = {"epoch", "unit", "lr", "seconds", "ecgs_per_s", "monitor_seconds", "min_std", "max_std"}


def figures_text(record: dict[str, Any]) -> str:
    """`loss 3.412  val AUROC 0.801  knn 0.781  rankme 41.2`: the figures of an epoch record worth a glance."""
    parts = []
    for key, value in record.items():
        if key in NOT_SHOWN or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        label = "val AUROC" if key == "val_auroc" else key
        parts.append(f"{label} {value:.4g}")
    return "  ".join(parts)


def duration(seconds: float) -> str:
    """`2m10s`, `1h05m`, `14s`."""
    seconds = max(int(round(seconds)), 0)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class RichReporter(Reporter):
    """Shows each training stage as a rich progress bar with the latest loss, monitors and validation AUROC."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stage(self, description: str, epochs: int) -> None:
        self.task = self.progress.add_task(escape(description), total=epochs, info="")

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        self.progress.update(self.task, completed=epoch, info=escape(figures_text(record)))

    def step(self, stage: str, step: int, steps: int, record: dict[str, Any]) -> None:
        self.progress.update(self.task, info=escape(f"step {step}/{steps}  loss {record['loss']:.4g}"))

    def finished(self, note: str) -> None:
        """Close the bar at the epochs actually run (training may stop before its maximum)."""
        if self.task is not None:
            done = next(t.completed for t in self.progress.tasks if t.id == self.task)
            self.progress.update(self.task, total=max(done, 1), completed=max(done, 1), info=escape(note))

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{escape(text)}[/dim]")

    def warning(self, text: str) -> None:
        self.progress.console.print(f"[yellow]warning: {escape(text)}[/yellow]")


class PlainReporter(Reporter):
    """One plain line per finished epoch of each unit (and per `--log-every` steps), for logs of batch jobs:
    `repeat 1/5 · pretrain · epoch 7/20  loss 3.412  knn 0.781  rankme 41.2  1,210 ECGs/s  eta 2m10s`."""

    def __init__(self, console) -> None:
        self.console = console
        self.started, self.first_epoch = time.monotonic(), None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stage(self, description: str, total: int) -> None:
        self.started, self.first_epoch = time.monotonic(), None
        self._line(f"{description}: up to {total} epoch{'s' if total != 1 else ''}")

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
        elapsed = time.monotonic() - self.started
        per_epoch = elapsed / (epoch - self.first_epoch + 1)
        rate = f"  {record['ecgs_per_s']:,.0f} ECGs/s" if record.get("ecgs_per_s") else ""
        eta = f"  eta {duration(per_epoch * (epochs - epoch))}" if epoch < epochs else ""
        self._line(f"{record.get('unit') or stage} · epoch {epoch}/{epochs}  {figures_text(record)}{rate}{eta}")

    def step(self, stage: str, step: int, steps: int, record: dict[str, Any]) -> None:
        self._line(f"{record.get('unit') or stage} · epoch {record['epoch']} · step {step}/{steps}  "
                   f"loss {record['loss']:.4g}")

    def message(self, text: str) -> None:
        self._line(text)

    def finished(self, note: str) -> None:
        if note:
            self._line(f"  {note}")


class PlainIngestReporter(Reporter):
    """`ecgcl ingest` in a batch job: one line when it starts and one per 10% of the records, from `QUIET_BELOW`
    records on (a smaller ingest takes seconds, and its summary table says the rest)."""

    QUIET_BELOW = 100

    def __init__(self, console) -> None:
        self.console, self.total, self.next_tenth, self.description = console, 0, 1, ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def stage(self, description: str, total: int) -> None:
        self.total, self.next_tenth, self.description = total, 1, description
        if total >= self.QUIET_BELOW:
            self.console.print(f"{description}: {total:,} records", markup=False, highlight=False)

    def advance(self, completed: int, info: dict[str, Any]) -> None:
        if self.total < self.QUIET_BELOW or completed * 10 < self.next_tenth * self.total:
            return
        self.next_tenth = completed * 10 // self.total + 1
        rate = f"  {info['rate']:,.0f} rec/s" if "rate" in info else ""
        skipped = f"  {info['skipped']} skipped" if info.get("skipped") else ""
        self.console.print(f"{self.description}: {completed:,}/{self.total:,} ({100 * completed // self.total}%)"
                           f"{rate}{skipped}", markup=False, highlight=False)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)


def training_progress(console) -> Reporter:
    """Rich bars on a terminal, plain lines otherwise (a batch job's log file)."""
    return RichReporter(console) if console.is_terminal else PlainReporter(console)


def ingest_progress(console) -> Reporter:
    """The ingest's rich bar on a terminal, a line per 10% of the records otherwise."""
    return IngestReporter(console) if console.is_terminal else PlainIngestReporter(console)


class IngestReporter(Reporter):
    """Shows an ingest (an `ecgcl.reporting.Reporter`) as one rich bar: records done of all, records/s, skipped,
    elapsed and remaining time. A context manager: the bar appears when the ingest starts its records (so an
    error before that prints nothing else) and stops on exit."""

    def __init__(self, console) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]} rec/s"),
                                 TextColumn("[red]{task.fields[skipped]} skipped"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.task = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.progress.stop()

    def stage(self, description: str, total: int) -> None:
        if self.task is None:
            self.progress.start()
        self.task = self.progress.add_task(escape(description), total=total, rate="-", skipped=0)

    def advance(self, completed: int, info: dict[str, Any]) -> None:
        fields = {}
        if "rate" in info:
            fields["rate"] = f"{info['rate']:,.0f}"
        if "skipped" in info:
            fields["skipped"] = info["skipped"]
        self.progress.update(self.task, completed=completed, **fields)

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{escape(text)}[/dim]")

    def finished(self, note: str) -> None:
        """The bar already shows how the ingest ended (all records done, the skipped count)."""
