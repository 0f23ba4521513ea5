"""Writing result files so that a crash never leaves half a file: a temporary file beside the target, then a rename.

A leaf module (standard library only) that every layer may use: results JSON, embeddings, robustness reports.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, mode: int | None = None) -> Path:
    """Call `write` on a binary handle of a temporary file beside `path`, then rename it to `path`; on any
    failure the temporary file is removed and `path` is left as it was. The file gets `mode`, by default the
    permissions the umask gives any new file (mkstemp alone would make it private)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_ready(value: Any) -> Any:
    """NaN -> None (recursively through dicts and lists), so the JSON files are valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write `payload` as indented JSON (NaN as null) through a temporary file and a rename."""
    text = json.dumps(json_ready(payload), indent=2) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
