"""Finding WFDB records: folders (honouring PhysioNet `RECORDS` files), headers, stems, `.mat` files, list files.

PhysioNet publishes a `RECORDS` file per database (and per sub-folder in nested ones): one record path per
line, relative to the file's folder; a line ending in `/` names a sub-folder with its own `RECORDS`. When a
folder has one, exactly the records it lists are ingested. Folders without one are walked for `.hea` files;
sub-folders are scanned in parallel threads (`os.scandir` releases the GIL), which matters for trees such as
MIMIC-IV-ECG's `files/pNNNN/pNNNNNNNN/sNNNNNNNN/`. A record can also be named by its stem (`path/E07500`, as
`wfdb` accepts), its `.hea`, its `.mat`/`.dat` signal file, or listed in a plain-text file (`ecgcl ingest
LIST.txt`): one path per line, relative to the list's folder; blank lines and `#` comments are ignored.
"""

from __future__ import annotations

from pathlib import Path

from ecgcl.data.folder_walk import RECORDS_FILE, walk_files
from ecgcl.errors import EcgclError

SIGNAL_SUFFIXES = (".hea", ".mat", ".dat")
LIST_SUFFIXES = (".txt", ".lst", ".list", ".records")


def is_record_list(path: Path) -> bool:
    """A plain-text list of records: a `RECORDS` file or a `.txt`/`.lst`/`.list` file."""
    return path.is_file() and (path.name == RECORDS_FILE or path.suffix.lower() in LIST_SUFFIXES)


def record_stem(path: Path) -> Path | None:
    """The record a path names (a stem, `.hea`, `.mat` or `.dat` with a header beside it), or None."""
    if path.suffix.lower() in SIGNAL_SUFFIXES:
        path = path.with_suffix("")
    return path if Path(f"{path}.hea").is_file() else None


def _read_lines(list_file: Path) -> list[str]:
    try:
        text = list_file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise EcgclError(f"record list {list_file} is unreadable: {error}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _listed(list_file: Path, workers: int) -> list[Path]:
    """Record stems named by a list file; folders it names are read through their own RECORDS or walked."""
    folder, stems = list_file.parent, []
    for entry in _read_lines(list_file):
        path = Path(entry) if Path(entry).is_absolute() else folder / entry
        if entry.endswith("/") or path.is_dir():
            stems += folder_records(path, workers)
        else:
            suffix = path.suffix.lower()
            stems.append(path.with_suffix("") if suffix in SIGNAL_SUFFIXES else path)
    return stems


def folder_records(root: Path, workers: int = 8) -> list[Path]:
    """Record stems under a folder: those its RECORDS file lists, else every header, walked level by level
    (`ecgcl.data.folder_walk.walk_files`, which stops at a folder's RECORDS file)."""
    files = [f for f in walk_files(root, workers) if f.suffix == ".hea" or f.name == RECORDS_FILE]
    return sorted(dict.fromkeys(stems_of(files, workers)), key=lambda p: p.as_posix())


def stems_of(files: list[Path], workers: int = 8) -> list[Path]:
    """Record stems of files a folder walk found: headers and signal files name their record, RECORDS and list
    files the records they list (a list file given alone keeps its order, as `wfdb_records` does)."""
    stems: list[Path] = []
    for file in files:
        if is_record_list(file):
            stems += _listed(file, workers)
        else:
            stems.append(file.with_suffix("") if file.suffix.lower() in SIGNAL_SUFFIXES else file)
    if len(files) == 1 and files[0].name != RECORDS_FILE:
        return list(dict.fromkeys(stems))
    return sorted(dict.fromkeys(stems), key=lambda p: p.as_posix())


def wfdb_records(source: Path, workers: int = 8) -> tuple[Path, list[Path]]:
    """(base folder for record ids, record stems) for any WFDB source: folder, list file, header, signal file, stem."""
    if source.is_dir():
        return source, folder_records(source, workers)
    if is_record_list(source):
        return source.parent, list(dict.fromkeys(_listed(source, workers)))
    stem = record_stem(source)
    if stem is None:
        raise EcgclError(f"{source} is not a WFDB record: no header {source.with_suffix('').name}.hea beside it")
    return stem.parent, [stem]


def record_id(stem: Path, base: Path) -> str:
    """A record's id: its path relative to the source's folder without extension (absolute when outside it)."""
    try:
        return stem.relative_to(base).as_posix()
    except ValueError:
        return stem.as_posix()
