"""The value types a store holds on disk: the one list that `--dtype`, the store writer and the manifest read.

Kept apart from `ecgcl.data.store` (numpy, pandas) so the CLI can declare `--dtype` without importing them.
"""

from __future__ import annotations

from ecgcl.errors import EcgclError

STORE_DTYPES = ("float32", "float16")


def check_store_dtype(name: str) -> str:
    """`name` when it is a store value type; one clear line for any other."""
    if name not in STORE_DTYPES:
        raise EcgclError(f"--dtype {name!r}: a store holds {' or '.join(STORE_DTYPES)} values")
    return name


__all__ = ["STORE_DTYPES", "check_store_dtype"]
