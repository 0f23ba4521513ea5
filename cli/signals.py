"""SIGTERM handled like Ctrl-C: `Terminated`, which the `ecgcl` group turns into exit code 143, and the context
manager that raises it. Its own module so that the group (`ecgcl.cli.main`) and the commands that clean up on
SIGTERM (`ecgcl.cli.ingest`) both import it without importing each other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by a command that cleans up on it (exit code 143)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (as `Terminated`), so `finally` blocks and context managers clean up.

    Outside the main thread (where Python cannot install signal handlers) it does nothing.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
