"""`tensorboard`: TensorBoard event files (the TensorFlow project's training dashboard, `tensorboard --logdir`).

Files go under OUT/tensorboard (or `log_dir`): one folder per unit, named by its slug
('repeat 1 · pretrain' -> repeat_1_pretrain), holding every figure as a scalar (tag = the figure's name,
step = the epoch), and OUT/tensorboard/run with the run's configuration as text ("config"). Written with
`torch.utils.tensorboard.SummaryWriter`, which needs the `tensorboard` package: `pip install 'ecgcl[tensorboard]'`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecgcl.interfaces import Tracker
from ecgcl.plugins.trackers._extra import require, slug


class TensorBoard(Tracker):
    """TensorBoard event files: a scalar per figure and epoch, one folder per unit under OUT/tensorboard."""

    name = "tensorboard"

    def __init__(self, log_dir: str | None = None) -> None:
        self.log_dir = log_dir
        self._root: Path | None = None
        self._writers: dict[str, Any] = {}
        self._writer_class = require("torch.utils.tensorboard", "tensorboard").SummaryWriter

    def start(self, out: Path, config: dict[str, Any]) -> None:
        self._root = Path(self.log_dir) if self.log_dir else Path(out) / "tensorboard"
        run = self._writer_class(log_dir=str(self._root / "run"))
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        run.add_text("config", "\n".join("    " + line for line in text.splitlines()))  # a markdown code block
        run.close()

    def _writer(self, unit: str) -> Any:
        if unit not in self._writers:
            self._writers[unit] = self._writer_class(log_dir=str(self._root / slug(unit)))
        return self._writers[unit]

    def log(self, unit: str, step: int, figures: dict[str, float]) -> None:
        writer = self._writer(unit)
        for tag, value in figures.items():
            writer.add_scalar(tag, float(value), global_step=step)

    def unit_finished(self, unit: str) -> None:
        writer = self._writers.pop(unit, None)
        if writer is not None:
            writer.close()

    def finish(self, artifacts: list[Path]) -> None:
        for unit in list(self._writers):
            self.unit_finished(unit)
