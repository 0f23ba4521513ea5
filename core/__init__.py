"""ecgcl: self-supervised contrastive pretraining of 12-lead ECGs.

The import package is light on purpose: torch is imported by the modules that need it, so
`ecgcl --help` stays fast. Plugins implement the hooks in `ecgcl.hookspecs` with `@ecgcl.hookimpl`.
The Python API (`ecgcl.load_encoder`, `open_store`, `targets`, `ingest`, `pretrain`, `run`, `tune`, `list_components`,
`show`, `preview`) lives in `ecgcl.api` and is loaded the first time one of its names is used.
"""

from importlib import import_module

from ecgcl.errors import EcgclError
from ecgcl.hookspecs import hookimpl
from ecgcl.version import __version__

API = ("load_encoder", "open_store", "targets", "ingest", "pretrain", "run", "tune", "list_components", "run_config",
       "show", "preview", "explain")


def __getattr__(name: str):
    """`ecgcl.load_encoder` and the other API names, imported from `ecgcl.api` on first use."""
    if name in API:
        return getattr(import_module("ecgcl.api"), name)
    raise AttributeError(f"module 'ecgcl' has no attribute {name!r}")


__all__ = ["EcgclError", "__version__", "hookimpl", *API]
