"""ecgcl: self-supervised contrastive pretraining of 12-lead ECGs.

The import package is light on purpose: torch is imported by the modules that need it, so
`ecgcl --help` stays fast. Plugins implement the hooks in `ecgcl.hookspecs` with `@ecgcl.hookimpl`.
"""

from ecgcl.errors import EcgclError
from ecgcl.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["EcgclError", "__version__", "hookimpl"]
