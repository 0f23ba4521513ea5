"""Writing result files so that a crash never leaves half a file: a temporary file beside the target, then a rename.

A leaf module (standard library and `ecgcl.errors` only) that every layer may use: checkpoints, results JSON and
CSV, plots, embeddings, robustness reports. A failed write (no space, no permission, an I/O error: any `OSError`)
removes its temporary file and becomes one `EcgclError` line naming the file and what it holds (`write_error`),
which the CLI prints as `Error: ...` with exit code 2; other exceptions pass through unchanged.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ecgcl.errors import EcgclError

_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_error(path: str | os.PathLike, what: str, error: OSError, *, kept: str | None = None) -> EcgclError:
    """The one line for a failed write of `what` (e.g. "checkpoint") to `path`:
    `cannot write the checkpoint /r/x.pt: No space left on device (free space and run the same command again:
    finished epochs are kept)`. `kept` says what a rerun keeps (None: nothing worth saying)."""
    path = Path(path)
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in _NO_SPACE:
        action = "free space"
    elif error.errno in _NOT_WRITABLE:
        action = f"make {path.parent} writable"
    else:
        action = f"check the disk of {path.parent}"
    return EcgclError(f"cannot write the {what} {path}: {reason} ({action} and run the same command again"
                      f"{': ' + kept if kept else ''})")


@contextmanager
def writing(path: str | os.PathLike, what: str, *, kept: str | None = None) -> Iterator[None]:
    """Turn an `OSError` raised in the block into `write_error(path, what, ...)`; nothing else is caught.
    For writers that are not `atomic_write` (a folder created, a library writing its own file)."""
    try:
        yield
    except OSError as error:
        raise write_error(path, what, error, kept=kept) from error


def make_folders(path: str | os.PathLike, what: str = "folder", *, kept: str | None = None) -> Path:
    """`path.mkdir(parents=True, exist_ok=True)`, an `OSError` as one line (`write_error`)."""
    path = Path(path)
    with writing(path, what, kept=kept):
        path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, what: str = "file",
                 kept: str | None = None, mode: int | None = None) -> Path:
    """Call `write` on a binary handle of a temporary file beside `path`, then rename it to `path`; on any
    failure the temporary file is removed and `path` is left as it was. The file gets `mode`, by default the
    permissions the umask gives any new file (mkstemp alone would make it private).

    An `OSError` (a full disk, a quota, no permission, an I/O error), from creating, writing, closing or renaming
    the file, becomes an `EcgclError` naming `path` and `what` it holds (see `write_error`); any other exception
    from `write` is raised as it is."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as error:
        _remove(tmp)
        raise write_error(path, what, error, kept=kept) from error
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:  # the folder became unwritable: nothing more to do; the write's own error is the one told
            pass


def json_ready(value: Any) -> Any:
    """NaN -> None (recursively through dicts and lists), so the JSON files are valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def write_json(path: str | os.PathLike, payload: Any, *, what: str = "file", kept: str | None = None) -> Path:
    """Write `payload` as indented JSON (NaN as null) through a temporary file and a rename (`atomic_write`)."""
    text = json.dumps(json_ready(payload), indent=2) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), what=what, kept=kept)


def write_csv(path: str | os.PathLike, frame, *, what: str = "file", kept: str | None = None) -> Path:
    r"""Write the pandas DataFrame `frame` as CSV (no index) through `atomic_write`, line breaks inside its text
    cells as `\n` (`plain_line_breaks`), so that every cell reads back whole."""
    frame = plain_line_breaks(frame)
    return atomic_write(path, lambda handle: frame.to_csv(handle, index=False), what=what, kept=kept)


def plain_line_breaks(frame):
    r"""`frame` with every `\r\n` or lone `\r` inside a text cell as `\n`.

    The csv module quotes a cell holding its line terminator (`\n`) but not one holding a lone `\r` (a
    spreadsheet cell from an old Mac), which pandas then reads back as a row break: a store whose metadata had
    such a cell would not open. A frame without one is returned as it is, uncopied.
    """
    out = frame
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        values = frame[column]
        try:
            found = values.str.contains("\r", regex=False, na=False)
        except AttributeError:  # an object column holding no text
            continue
        if found.any():
            out = out.copy() if out is frame else out
            fixed = values[found].str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
            out[column] = values.mask(found, fixed)
    return out


def save_figure(path: str | os.PathLike, fig, *, what: str = "plot", dpi: int = 110) -> Path:
    """Save the matplotlib figure `fig` to `path` (its format from the suffix) through `atomic_write`."""
    suffix = Path(path).suffix.lstrip(".") or None
    return atomic_write(path, lambda handle: fig.savefig(handle, format=suffix, dpi=dpi), what=what)


def finish_figure(path: str | os.PathLike, fig, *, what: str = "plot", dpi: int = 110, layout: bool = True) -> Path:
    """Lay out `fig` (tight layout, unless `layout` is False: a figure laid out already), save it with
    `save_figure` and close it (also when saving fails), so no figure stays open."""
    import matplotlib.pyplot as plt

    try:
        if layout:
            fig.tight_layout()
        return save_figure(path, fig, what=what, dpi=dpi)
    finally:
        plt.close(fig)
