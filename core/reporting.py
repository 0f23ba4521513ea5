"""How core tells its caller what is happening: a `Reporter` whose methods do nothing by default.

Core never prints. Long-running functions (ingest, pretraining, fine-tuning, the protocol) take a `reporter`
and call it; the CLI passes one that draws rich progress bars, the Python API's default is this silent one.
"""

from __future__ import annotations

from typing import Any


class Reporter:
    """Progress callbacks; every method is optional for a subclass, and the base class ignores them all."""

    def stage(self, description: str, total: int) -> None:
        """A unit of work starts: a training stage of `total` epochs ('repeat 1 · pretrain'), or `total`
        records to ingest."""

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        """A training epoch finished (called after its checkpoint is written)."""

    def advance(self, completed: int, info: dict[str, Any]) -> None:
        """Progress inside the current stage that is not an epoch: `completed` items so far (ingested records),
        with a few figures to show (`rate`, `skipped`)."""

    def message(self, text: str) -> None:
        """A one-line note (a unit skipped because it finished earlier, ...)."""

    def finished(self, note: str) -> None:
        """The current stage ended, perhaps before its last epoch (`note`: how, e.g. 'stopped: patience')."""
