"""Rich progress bars: the training commands' (`RichReporter`) and `ecgcl ingest`'s (`IngestReporter`), both
`ecgcl.reporting.Reporter`s."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ecgcl.reporting import Reporter


class RichReporter:
    """Shows each training stage as a rich progress bar with the latest loss / validation AUROC."""

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
        info = f"loss {record['loss']:.4f}" if "loss" in record else ""
        if record.get("val_auroc") is not None:
            info += f"  val AUROC {record['val_auroc']:.3f}"
        self.progress.update(self.task, completed=epoch, info=info)

    def finished(self, note: str) -> None:
        """Close the bar at the epochs actually run (training may stop before its maximum)."""
        if self.task is not None:
            done = next(t.completed for t in self.progress.tasks if t.id == self.task)
            self.progress.update(self.task, total=max(done, 1), completed=max(done, 1), info=escape(note))

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{escape(text)}[/dim]")


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
