"""`wandb`: Weights & Biases (the hosted experiment tracker, wandb.ai; `wandb sync` uploads offline runs).

One W&B run per unit ('repeat 1 · pretrain'), named after it and grouped by the results folder's name, with the
run's configuration as its config and every figure logged at step = the epoch. At the end, one more run of the
group (job_type "files") saves the result files. Mode: the `mode` option, else $WANDB_MODE, else "online" when
an API key is available ($WANDB_API_KEY or ~/.netrc) and "offline" otherwise; offline runs are written under
OUT/wandb/offline-run-*. W&B's own console output is silenced ($WANDB_SILENT) unless the user set it.
Needs `pip install 'ecgcl[wandb]'`.
"""

from __future__ import annotations

import netrc
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ecgcl.interfaces import Tracker
from ecgcl.plugins.trackers._extra import require


def logged_in() -> bool:
    """Whether W&B has an API key: $WANDB_API_KEY or a netrc entry for its host ($WANDB_BASE_URL)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandB(Tracker):
    """Weights & Biases: a run per unit, grouped by results folder; offline under OUT/wandb unless logged in."""

    name = "wandb"

    def __init__(self, project: str = "ecgcl", mode: str | None = None, entity: str | None = None) -> None:
        self.project, self.mode, self.entity = project, mode, entity
        self._runs: dict[str, Any] = {}
        self._wandb = require("wandb", "wandb")

    def start(self, out: Path, config: dict[str, Any]) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        self.out, self.config = Path(out).resolve(), config
        self.resolved_mode = self.mode or os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")
        version = tuple(int(n) for n in re.findall(r"\d+", self._wandb.__version__)[:3])
        self._reinit: Any = "create_new" if version >= (0, 19, 10) else True  # several runs open at once

    def _init(self, name: str, **extra: Any) -> Any:
        return self._wandb.init(project=self.project, entity=self.entity, group=self.out.name, name=name,
                                config=self.config, dir=str(self.out), mode=self.resolved_mode,
                                reinit=self._reinit, settings=self._wandb.Settings(console="off"), **extra)

    def log(self, unit: str, step: int, figures: dict[str, float]) -> None:
        if unit not in self._runs:
            self._runs[unit] = self._init(unit)
        self._runs[unit].log({k: float(v) for k, v in figures.items()}, step=step)

    def unit_finished(self, unit: str) -> None:
        run = self._runs.pop(unit, None)
        if run is not None:
            run.finish()

    def finish(self, artifacts: list[Path]) -> None:
        for unit in list(self._runs):
            self.unit_finished(unit)
        files = [Path(p).resolve() for p in artifacts if Path(p).is_file()]
        if files:
            run = self._init(self.out.name, job_type="files")
            for path in files:
                run.save(str(path), base_path=str(path.parent), policy="now")
            run.finish()
