"""The one check the trackers share: their package is an optional extra (`pip install 'ecgcl[NAME]'`), imported
only when a run starts, so `ecgcl --help` and runs without `--track` never pay for it."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from ecgcl.errors import EcgclError


def require(module: str, tracker: str) -> ModuleType:
    """`module` imported, or an EcgclError telling how to install the extra of `tracker`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise EcgclError(f"--track {tracker} needs the {tracker} package: pip install 'ecgcl[{tracker}]'") from error


def slug(unit: str) -> str:
    """A folder-safe name of a unit: 'repeat 1 · pretrain' -> 'repeat_1_pretrain'."""
    return re.sub(r"[^a-z0-9]+", "_", unit.lower()).strip("_") or "unit"
