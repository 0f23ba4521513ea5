"""`csv_log`: an experiment tracker that appends every logged figure to one CSV file in the results folder.

It shows how a third-party plugin adds a `Tracker` (`ecgcl.interfaces.Tracker`): `start` receives the results
folder and the resolved configuration, `log` one unit's figures at one step (the epoch, 1-based), `finish` the
files the run wrote. The file is plain long-format CSV, readable with `pandas.read_csv`:

    unit,step,figure,value
    pretrain,1,loss,5.01
    ...
    artifact,,config.json,          <- one row per result file, written by `finish` (unit "artifact", no step,
                                       the file's name as figure, no value)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Tracker

HEADER = ("unit", "step", "figure", "value")
ARTIFACT = "artifact"  # the unit of the rows `finish` writes


class CsvLog(Tracker):
    """Appends rows `unit,step,figure,value` to `OUT/<file>` (the header once, when the file is new or empty),
    then one row `artifact,,NAME,` per result file at the end of the run. Nothing is written before the first
    figure, so a run that fails to start leaves no file."""

    name = "csv_log"

    def __init__(self, file: str = "tracked.csv") -> None:
        if not file or Path(file).name != file:
            raise EcgclError(f"csv_log: file must be a plain file name inside the results folder, got {file!r}")
        self.file = file
        self.path: Path | None = None

    def start(self, out: Path, config: dict[str, Any]) -> None:
        self.path = Path(out) / self.file

    def log(self, unit: str, step: int, figures: dict[str, float]) -> None:
        self._append([(unit, int(step), name, repr(float(value))) for name, value in figures.items()])

    def finish(self, artifacts: list[Path]) -> None:
        self._append([(ARTIFACT, "", Path(path).name, "") for path in artifacts])

    def _append(self, rows: list[tuple]) -> None:
        if self.path is None:
            raise RuntimeError("csv_log: log() or finish() before start()")
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(HEADER)
            writer.writerows(rows)


__all__ = ["CsvLog"]
