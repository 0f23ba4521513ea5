"""MkDocs hook: let mkdocstrings (griffe) find the `ecgcl` package.

`ecgcl` is installed from three folders through setuptools' package-dir mapping (`ecgcl` = `core/`), so no
folder on disk is named `ecgcl` and griffe cannot find the package by path. It then imports `ecgcl` and reads
its submodules from the package's `__path__` (`core/`), which works, unless a search path holds some other
file named `ecgcl` first: the `ecgcl` console script beside `mkdocs` in the venv's `bin/` (on `sys.path` when
MkDocs runs as `.venv/bin/mkdocs`), which griffe would take for a namespace package. This hook drops such
entries from `sys.path` before mkdocstrings reads it; nothing is imported from them.
"""

from __future__ import annotations

import os
import sys

from mkdocs.plugins import event_priority


@event_priority(100)  # before mkdocstrings builds its handlers
def on_config(config):
    sys.path[:] = [path for path in sys.path if not os.path.isfile(os.path.join(path or ".", "ecgcl"))]
    return config
