"""The walk of a source folder: every file a reader may claim, folder links followed once, loops skipped.

Sub-folders are scanned level by level in parallel threads (`os.scandir` releases the GIL). Real folders are
walked first; then each folder link (`latest -> 2024-05`, a share's `data -> /mnt/archive`), in path order, is
followed only into a folder not walked yet, compared by resolved path. A link to a folder above it (`sub/loop
-> ..`) is a loop and a link to a folder already read under another path would give its records twice: both
are skipped and reported, as is a link whose target does not exist (unreadable). A folder with a PhysioNet
`RECORDS` file contributes that file alone (its database lists its records); hidden entries and the files
beside a WFDB header with its stem (`.dat`, `.mat`, annotations) are left out.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ecgcl.errors import EcgclError

RECORDS_FILE = "RECORDS"
LOOP, WALKED, DANGLING = "loop", "already walked", "dangling"
LINK_RULE = ("folder links are followed into folders not walked yet; a loop (a link to a folder above it) and a "
             "link to a folder already walked under another path are skipped, so no record is read twice; a "
             "dangling link (its target does not exist) is unreadable")


@dataclass(frozen=True)
class SkippedLink:
    """A link the walk did not follow (or a folder reached again through one): `reason` is LOOP, WALKED or
    DANGLING; `target` the resolved path."""

    path: Path
    target: Path
    reason: str


@dataclass
class FolderWalk:
    """The files a walk found (sorted by path) and the links it skipped (in the order met)."""

    files: list[Path]
    skipped_links: list[SkippedLink] = field(default_factory=list)


@dataclass
class _Scan:
    """One folder's entries: files, real sub-folders, folder links and dangling links."""

    files: list[Path]
    folders: list[Path]
    links: list[Path]
    dangling: list[Path]


def walk_files(root: Path, workers: int = 8) -> list[Path]:
    """Every file under `root` a reader may claim, sorted (see `walk_folder`; skipped links are dropped)."""
    return walk_folder(root, workers).files


def walk_folder(root: Path, workers: int = 8) -> FolderWalk:
    """Every file under `root` a reader may claim, and the links skipped (see the module docstring)."""
    found: list[Path] = []
    skipped: list[SkippedLink] = []
    resolved_root = os.path.realpath(root)
    visited = {resolved_root}
    frontier = [(root, resolved_root)]  # (folder as reached, its resolved path)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        while frontier:
            links: list[tuple[Path, str]] = []  # (folder link, resolved path of the folder holding it)
            while frontier:
                next_frontier = []
                for (folder, resolved), scan in zip(frontier, pool.map(_scan, [f for f, _ in frontier])):
                    found += scan.files
                    skipped += [SkippedLink(p, Path(os.path.realpath(p)), DANGLING) for p in scan.dangling]
                    for sub in scan.folders:
                        real = os.path.join(resolved, sub.name)
                        if real in visited:  # reached again through a link walked in the same round
                            skipped.append(SkippedLink(sub, Path(real), WALKED))
                        else:
                            visited.add(real)
                            next_frontier.append((sub, real))
                    links += [(link, resolved) for link in scan.links]
                frontier = next_frontier
            frontier = _follow(links, visited, skipped)
    return FolderWalk(sorted(found, key=lambda p: p.as_posix()), skipped)


def _follow(links: list[tuple[Path, str]], visited: set[str],
            skipped: list[SkippedLink]) -> list[tuple[Path, str]]:
    """The folder links to walk next (targets not visited yet, first link by path wins); the others skipped."""
    frontier = []
    for link, holder in sorted(links, key=lambda item: item[0].as_posix()):
        target = os.path.realpath(link)
        if (holder.rstrip(os.sep) + os.sep).startswith(target.rstrip(os.sep) + os.sep):  # a folder above the link
            skipped.append(SkippedLink(link, Path(target), LOOP))
        elif target in visited:
            skipped.append(SkippedLink(link, Path(target), WALKED))
        else:
            visited.add(target)
            frontier.append((link, target))
    return frontier


def _scan(folder: Path) -> _Scan:
    """One folder's entries, sorted into kinds (a RECORDS file alone when it has one)."""
    scan = _Scan([], [], [], [])
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                try:
                    folder_like = entry.is_dir()
                except OSError:  # a link to itself, or to a target that cannot be examined
                    folder_like = None
                if folder_like:
                    (scan.links if entry.is_symlink() else scan.folders).append(path)
                elif entry.is_symlink() and (folder_like is None or not os.path.exists(entry.path)):
                    scan.dangling.append(path)
                elif entry.name == RECORDS_FILE and entry.is_file():
                    return _Scan([path], [], [], [])
                else:  # FIFOs and sockets too: their reader skips them with a reason, unread
                    scan.files.append(path)
    except OSError as error:
        raise EcgclError(f"cannot list folder {folder}: {error}") from None
    stems = {p.with_suffix("") for p in scan.files if p.suffix == ".hea"}
    scan.files = [p for p in scan.files if p.suffix == ".hea" or p.with_suffix("") not in stems]
    return scan
