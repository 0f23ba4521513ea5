"""Lock files, so two ecgcl processes never write one results folder or one store at the same time.

A lock is a small JSON file created with `O_EXCL` (atomic on local and NFS v3+ file systems) holding the
writer's pid, host, process start time and command line. A second writer fails at once with one line naming
the holder. A lock whose process is gone (killed, machine rebooted) is stale: it is detected from the pid and
the process start time (so a recycled pid is not mistaken for the holder), removed and reported. A lock
written on another host cannot be checked from here and is always treated as held.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecgcl.errors import EcgclError

LOCK_NAME = ".ecgcl.lock"
Notify = Callable[[str], None]


def process_start_time(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of proc(5), counted after the command name


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process `pid` still runs (and, when `start_time` is known, is the same process, not a recycled pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        pass
    except OSError:
        return False
    if start_time is not None:
        current = process_start_time(pid)
        if current is not None and current != start_time:
            return False
    return True


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def _stale(holder: dict[str, Any] | None) -> bool:
    if holder is None or holder.get("host") != socket.gethostname():
        return False  # unreadable (being written right now) or another machine's: cannot tell, so held
    return not process_alive(holder["pid"], holder.get("start_time"))


@contextmanager
def hold_lock(path: str | os.PathLike, *, what: str, notify: Notify | None = None) -> Iterator[Path]:
    """Hold the lock file `path` for the block (`what` names the guarded thing in messages).

    Raises EcgclError at once when a live process holds it; removes a stale one (telling `notify`) and takes it.
    """
    path = Path(path)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": process_start_time(os.getpid()),
          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if not _stale(holder):
                who = (f"pid {holder['pid']} on {holder.get('host')}, since {holder.get('started')}: "
                       f"{holder.get('command')}") if holder else "a process that is starting"
                raise EcgclError(f"{what} is in use by another ecgcl process ({who}); wait for it to finish, or "
                                 f"delete {path} if that process is gone") from None
            path.unlink(missing_ok=True)
            if notify is not None:
                notify(f"removed the stale lock {path} of pid {holder['pid']}, which is no longer running")
            continue
        except OSError as error:
            raise EcgclError(f"cannot write in {path.parent}: {error.strerror or error}") from None
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
        except OSError as error:  # a full disk while writing the lock's few bytes: no half lock left behind
            path.unlink(missing_ok=True)
            raise EcgclError(f"cannot write the lock {path}: {error.strerror or error}") from None
        break
    else:
        raise EcgclError(f"{what}: could not take the lock {path}; another process keeps taking it")
    try:
        yield path
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


@contextmanager
def hold_folder(folder: str | os.PathLike, *, what: str = "results folder", notify: Notify | None = None
                ) -> Iterator[Path]:
    """Create `folder` if needed and hold its lock for the block; an unusable path is one clear error.

    A folder this call created and that is still empty afterwards (the run stopped before writing) is removed.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise EcgclError(f"{what} {folder} exists and is not a folder") from None
    except NotADirectoryError:
        raise EcgclError(f"{what} {folder} cannot be created: a part of the path is a file") from None
    except OSError as error:
        raise EcgclError(f"{what} {folder} cannot be created: {error.strerror or error}") from None
    try:
        with hold_lock(folder / LOCK_NAME, what=f"{what} {folder}", notify=notify):
            yield folder
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def locks_results_folder(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a function taking a `RunConfig` first: it runs holding the lock of `config.out` (see `hold_folder`).

    Under torchrun only rank 0 (the one that writes files) takes it. A stale lock it removes is reported
    through the `reporter` keyword argument when there is one, else on stderr.
    """
    import functools

    @functools.wraps(func)
    def locked(config, *args: Any, **kwargs: Any) -> Any:
        if int(os.environ.get("RANK", "0") or 0) != 0:
            return func(config, *args, **kwargs)
        reporter = kwargs.get("reporter")
        notify = reporter.message if reporter is not None else (lambda text: print(text, file=sys.stderr))
        with hold_folder(config.out, notify=notify):
            return func(config, *args, **kwargs)

    return locked
