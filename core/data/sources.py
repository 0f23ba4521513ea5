"""Which reader reads a source: the one `--format NAME` names, a layout reader that recognises the whole source
(PTB-XL, CODE-15, MIMIC-IV-ECG, an array file), or, for a folder, the file readers that recognise its files.

A folder may mix formats: it is walked once (`ecgcl.data.folder_walk`: links followed once, loops skipped and
reported), each file goes to the first reader, by priority, whose suffixes include the file's and whose
`recognises` accepts its first 4 KiB, and the readers that claimed files are combined into one `MixedReader`.
A folder with a PhysioNet `RECORDS` file is a WFDB database: the records it lists are read, nothing else
under it. Files beside a WFDB header with its stem (`.dat`, `.mat`, annotations) belong to that record;
any other file no reader claims is listed as unrecognised, never read.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ecgcl.data.folder_walk import SkippedLink, walk_folder
from ecgcl.data.records import RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError, did_you_mean

SNIFF_BYTES = 4096


@dataclass
class OpenedSource:
    """The reader of a source, the files of a folder walk that no reader claimed and the links it skipped."""

    reader: Reader
    unrecognised: list[Path]
    skipped_links: list[SkippedLink] = field(default_factory=list)


def reader_classes(registry) -> list[type[Reader]]:
    """Every registered reader class, lowest priority value first (ties by name)."""
    components = registry.components("reader")
    return [c.factory for c in sorted(components, key=lambda c: (getattr(c.factory, "priority", 50), c.name))]


def read_head(path: Path) -> bytes:
    """The first 4 KiB of a regular file (b"" for anything else, or a file that cannot be read)."""
    try:
        if not path.is_file():
            return b""
        with open(path, "rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError:
        return b""


def check_requirements(cls: type[Reader], example: Path) -> None:
    """EcgclError naming the file and the pip extra when the modules a reader needs are not installed."""
    missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
    if missing:
        extra = f"pip install 'ecgcl[{cls.extra}]'" if cls.extra else f"pip install {' '.join(missing)}"
        raise EcgclError(f"{example} is {cls.kind} ({_first_line(cls)}); reading it needs {', '.join(missing)}: "
                         f"{extra}")


def build_reader(cls: type[Reader], source: Path, files: list[Path] | None, context: dict[str, Any]) -> Reader:
    """`cls(source, files=..., <the context values its signature names>)`, after checking its requirements."""
    check_requirements(cls, files[0] if files else source)
    names = inspect.signature(cls).parameters
    kwargs = {name: value for name, value in context.items() if name in names}
    if files is not None:
        kwargs["files"] = files
    return cls(source, **kwargs)


def open_source(source: str | os.PathLike, registry, *, fmt: str | None = None,
                context: dict[str, Any] | None = None, workers: int = 8) -> OpenedSource:
    """The reader of `source` (see the module docstring); EcgclError when none reads it."""
    path, context = Path(source), dict(context or {})
    classes = reader_classes(registry)
    if fmt is not None:
        known = registry.names("reader")
        if (("reader", fmt)) not in registry:
            raise EcgclError(f"--format {fmt!r} is not a reader{did_you_mean(fmt, known)}; known: {', '.join(known)}")
        classes = [registry.get("reader", fmt).factory]
    if not path.exists() and not _names_record(path, classes):
        raise EcgclError(f"source {path} does not exist")
    head = read_head(path)
    for cls in classes:
        if cls.layout and (fmt is not None or cls.recognises(path, head)):
            return OpenedSource(build_reader(cls, path, None, context), [])
    files = [c for c in classes if not c.layout]
    if path.is_dir():
        return _open_folder(path, files, context, workers, fmt)
    for cls in files:
        if fmt is not None or cls.recognises(path, head):
            return OpenedSource(build_reader(cls, path.parent, [path], context), [])
    hints = [hint for c in files if path.suffix.lower() in c.suffixes for hint in [c.mismatch(path)] if hint]
    if hints:
        raise EcgclError(f"source {path}: {hints[0]}")
    kinds = ", ".join(sorted(c.kind for c in classes))
    raise EcgclError(f"source {path}: no reader recognises it (readers: {kinds}); name one with --format, or see "
                     "`ecgcl list-plugins --kind reader`")


def _names_record(path: Path, classes: list[type[Reader]]) -> bool:
    """A path that does not exist may still name a record (a WFDB stem with its `.hea` beside it)."""
    return any(cls.recognises(path, b"") for cls in classes)


def _open_folder(root: Path, classes: list[type[Reader]], context: dict[str, Any], workers: int,
                 fmt: str | None) -> OpenedSource:
    walk = walk_folder(root, workers)
    files = walk.files
    claimed: dict[type[Reader], list[Path]] = {}
    unrecognised: list[Path] = []
    for file in files:
        owner = claim(file, classes)
        if owner is None:
            unrecognised.append(file)
        else:
            claimed.setdefault(owner, []).append(file)
    if not claimed:
        what = f"no {fmt} files" if fmt else "no file any reader recognises"
        sample = ", ".join(p.name for p in unrecognised[:3])
        raise EcgclError(f"source {root}: {what} ({len(unrecognised)} other file(s){': ' + sample if sample else ''}"
                         "); `ecgcl list-plugins --kind reader` lists the formats")
    parts = [build_reader(cls, root, members, context) for cls, members in claimed.items()]
    reader = parts[0] if len(parts) == 1 else MixedReader(root, parts)
    return OpenedSource(reader, unrecognised, walk.skipped_links)


def claim(file: Path, classes: list[type[Reader]]) -> type[Reader] | None:
    """The first reader (by priority) that recognises `file`; its head is read only when a suffix matches."""
    suffix = file.suffix.lower()
    head: bytes | None = None
    for cls in classes:
        if suffix in cls.suffixes or (not suffix and "" in cls.suffixes):
            head = read_head(file) if head is None else head
            if cls.recognises(file, head):
                return cls
    return None


class MixedReader(Reader):
    """Several readers over one folder (one per format found): refs carry which reader loads them, and the
    `format` column says which format each record came from."""

    kind = "mixed"

    def __init__(self, root: Path, parts: list[Reader]) -> None:
        self.root, self.parts = root, parts
        self.parallel = "process" if all(p.parallel == "process" for p in parts) else "thread"

    def describe(self) -> str:
        return f"{len(self.parts)} formats under {self.root} ({', '.join(p.kind for p in self.parts)})"

    def discover(self) -> list[RecordRef]:
        refs = []
        for index, part in enumerate(self.parts):
            for ref in part.discover():
                refs.append(replace(ref, locator=(index, ref.locator), meta={**ref.meta, "format": part.kind}))
        return refs

    def _inner(self, ref: RecordRef) -> tuple[Reader, RecordRef]:
        index, locator = ref.locator
        return self.parts[index], replace(ref, locator=locator)

    def probe(self, ref: RecordRef) -> tuple[float, int] | None:
        part, inner = self._inner(ref)
        return part.probe(inner) if hasattr(part, "probe") else None

    def load(self, ref: RecordRef) -> RawRecord:
        part, inner = self._inner(ref)
        return part.load(inner)

    @property
    def library(self) -> str:  # type: ignore[override]
        return ",".join(p.library for p in self.parts if p.library)

    @property
    def clinical(self) -> bool:  # type: ignore[override]
        return any(p.clinical for p in self.parts)


def _first_line(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.splitlines()[0].rstrip(".") if doc else cls.__name__
