"""`ecgcl show`: pick records of a store (by id, by a task's class, at random) and write their 12-lead sheets.

One record per page: `--out sheet.pdf` is one PDF with a page per record; a `.png` or `.svg` path with one
record is that file, with several records one file per record, the id inserted before the suffix
(`sheet_123.png`); a path without a suffix is a folder holding `ID.png` per record. Every file is written
through a temporary file and a rename, and every choice is checked before the first file is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcl.data.sheet import DPI, STRIP_S, sheet_figure
from ecgcl.data.store import ECGStore, open_store
from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.files import atomic_write, make_folders, save_figure

FORMATS = (".png", ".pdf", ".svg")
HIDDEN_COLUMNS = {"record_id", "patient_id", "labels", "source_path", "fs", "original_fs"}  # shown otherwise or private


@dataclass
class Sheet:
    """One written sheet: the file, the record (its store row), the image size in pixels at the dpi it was drawn
    with, and each panel's box (left, top, right, bottom) in those pixels."""

    path: Path
    record_id: str
    row: int
    size: tuple[int, int]
    panels: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


def resolve_store(store: ECGStore | str | os.PathLike) -> ECGStore:
    """An open store; `sample` (where no such folder exists) is the embedded PTB-XL sample."""
    if isinstance(store, ECGStore):
        return store
    if str(store) == "sample" and not Path(store).exists():
        from ecgcl.data.sample import sample_store_path

        store = sample_store_path()
    return open_store(store)


def record_name(store: ECGStore, row: int) -> str:
    """The record id of a row, with its window number in a windowed store (`123_w2`)."""
    name = str(store.metadata["record_id"].iat[row])
    return f"{name}_w{store.window_numbers[row]}" if "window" in store.metadata.columns else name


def footer(store: ECGStore, row: int) -> list[str]:
    """Two lines under the sheet: record, labels and other metadata; sampling rate, scale, units, length."""
    meta = store.metadata.iloc[row]
    extra = [f"{k} {_text(v)}" for k, v in meta.items() if k not in HIDDEN_COLUMNS and _text(v) not in ("", "nan")]
    first = f"record {record_name(store, row)}   labels: {meta['labels'] or 'none'}   " + "   ".join(extra)
    seconds = store.signals.shape[2] / store.fs
    shown = f"first {STRIP_S:g} s of {seconds:g} s" if seconds > STRIP_S else f"{seconds:g} s"
    units = store.manifest.get("units", "mV")
    return [first[:220], f"{store.fs:g} Hz   25 mm/s   10 mm/mV   units {units}   {shown}   store {store.path.name}"]


def _text(value: object) -> str:
    """A metadata cell as text, whole-number floats without `.0` (`age 23`, `strat_fold 5`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def output_paths(out: str | os.PathLike, names: list[str]) -> list[Path]:
    """Where each record's sheet goes (the same PDF for all with `.pdf`); EcgclError for an unknown suffix."""
    out = Path(out)
    suffix = out.suffix.lower()
    if out.is_dir() or not suffix:
        return [out / f"{_safe(name)}.png" for name in names]
    if suffix not in FORMATS:
        raise EcgclError(f"--out: expected a .png, .pdf or .svg file or a folder, got {str(out)!r}")
    if suffix == ".pdf" or len(names) == 1:
        return [out] * len(names)
    return [out.with_name(f"{out.stem}_{_safe(name)}{out.suffix}") for name in names]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def draw_sheet(store: ECGStore | str | os.PathLike, rows: list[int], out: str | os.PathLike, *,
               dpi: int = DPI) -> list[Sheet]:
    """Write the 12-lead sheet of each store row in `rows` to `out` (see the module docstring for the files)."""
    store = resolve_store(store)
    names = [record_name(store, row) for row in rows]
    paths = output_paths(out, names)
    make_folders(paths[0].parent, "sheet folder")  # `--out figs/sheet.png` makes figs/
    pdf = paths[0].suffix.lower() == ".pdf"
    sheets, figures = [], []
    for row, name, path in zip(rows, names, paths):
        signal = store.read(np.array([row]))[0]
        fig, boxes = sheet_figure(signal, store.fs, store.leads, footer(store, row), dpi=dpi)
        size = (int(fig.bbox.width), int(fig.bbox.height))  # as matplotlib sizes the image
        sheets.append(Sheet(path, name, row, size, boxes))
        if pdf:
            figures.append(fig)
        else:
            save_figure(path, fig, what="ECG sheet", dpi=dpi)
    if pdf:
        atomic_write(paths[0], lambda handle: _pdf(handle, figures, dpi), what="ECG sheets")
    return sheets


def show(store: ECGStore | str | os.PathLike, *, records: str | list[str] | None = None, task: str | None = None,
         class_name: str | None = None, n: int | None = None, random: int | None = None, seed: int | None = None,
         out: str | os.PathLike = "sheet.png", dpi: int = DPI) -> list[Sheet]:
    """`ecgcl show`: the sheets of the records chosen (`pick_rows`), written to `out`; nothing is written when a
    choice is wrong."""
    from ecgcl.data.picks import pick_rows

    store = resolve_store(store)
    require_positive_ints("show", dpi=dpi)
    rows = pick_rows(store, records=records, task=task, class_name=class_name, n=n, random=random, seed=seed)
    return draw_sheet(store, rows, out, dpi=dpi)


def _pdf(handle, figures, dpi: int) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(handle) as pdf:
        for fig in figures:
            pdf.savefig(fig, dpi=dpi)
