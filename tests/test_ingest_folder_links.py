"""Folder links in a source: followed once into folders not walked yet; loops, second paths to a folder and
dangling links skipped, reported in the summary and the manifest, never fatal.

The folders are built around real PTB-XL records (100 Hz) copied from the fixture or the shared subset.
"""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.folder_walk import DANGLING, LOOP, WALKED, walk_folder
from ecgcl.data.store import open_store


def copy_record(ptbxl, ecg_id: int, folder) -> None:
    """PTB-XL record `ecg_id` (header and signal) copied into `folder`."""
    source = ptbxl / "records100" / f"{ecg_id // 1000 * 1000:05d}" / f"{ecg_id:05d}_lr"
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".hea", ".dat"):
        shutil.copyfile(source.with_suffix(suffix), folder / f"{ecg_id:05d}_lr{suffix}")


@pytest.fixture
def archive(ptbxl_dir, tmp_path):
    """`src/` with two records in `2024-05/` (also reached by `latest -> 2024-05`), one in `sub/` with
    `sub/loop -> ..`, a dangling `gone` link, and `external`/`mirror` links to one folder outside holding one."""
    root = tmp_path / "src"
    copy_record(ptbxl_dir, 1, root / "2024-05")
    copy_record(ptbxl_dir, 2, root / "2024-05")
    copy_record(ptbxl_dir, 3, root / "sub")
    copy_record(ptbxl_dir, 4, tmp_path / "elsewhere")
    os.symlink("..", root / "sub" / "loop")
    os.symlink("2024-05", root / "latest")
    os.symlink(tmp_path / "gone-for-good", root / "gone")
    os.symlink("../elsewhere", root / "external")
    os.symlink(tmp_path / "elsewhere", root / "mirror")
    return root


def test_a_loop_a_second_path_and_a_dangling_link_are_skipped_and_reported(archive, tmp_path):
    result = CliRunner().invoke(cli, ["ingest", str(archive), str(tmp_path / "store"), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "store")
    assert sorted(store.metadata["record_id"]) == ["2024-05/00001_lr", "2024-05/00002_lr", "external/00004_lr",
                                                   "sub/00003_lr"]  # each record once, under its first path
    section = store.manifest["skipped_links"]
    assert section["count"] == 4 and "loop" in section["rule"]
    assert sorted((e["path"], e["target"], e["reason"]) for e in section["links"]) == [
        ("gone", str(tmp_path / "gone-for-good"), DANGLING), ("latest", "2024-05", WALKED),
        ("mirror", str(tmp_path / "elsewhere"), WALKED), ("sub/loop", ".", LOOP)]
    assert "unrecognised_files" not in store.manifest  # the dangling link is not offered to the readers
    out = " ".join(result.output.split())
    assert ("skipped links: 1 loop(s) to a folder above, not followed (sub/loop -> .); 2 to a folder already "
            "walked, not followed again (latest -> 2024-05, mirror -> ") in out
    assert f"1 dangling (target missing), unreadable (gone -> {tmp_path / 'gone-for-good'}); listed in" in out


def test_links_above_the_source_and_to_themselves_end_the_walk(archive, tmp_path):
    os.symlink("../..", archive / "sub" / "up")  # the source's parent: would walk the source again, and more
    os.symlink("self", archive / "self")
    walk = walk_folder(archive, workers=2)
    assert [p.relative_to(archive).as_posix() for p in walk.files] == [
        "2024-05/00001_lr.hea", "2024-05/00002_lr.hea", "external/00004_lr.hea", "sub/00003_lr.hea"]
    reasons = {link.path.relative_to(archive).as_posix(): link.reason for link in walk.skipped_links}
    assert reasons == {"sub/loop": LOOP, "sub/up": LOOP, "self": DANGLING, "gone": DANGLING, "latest": WALKED,
                       "mirror": WALKED}


def test_a_folder_reached_again_inside_a_followed_link_is_walked_once(ptbxl_dir, tmp_path):
    """`a -> shared/inner` and `b -> shared` are followed in one round: `b/inner` is `a` again."""
    root = tmp_path / "src"
    copy_record(ptbxl_dir, 5, root / "own")
    copy_record(ptbxl_dir, 6, tmp_path / "shared" / "inner")
    copy_record(ptbxl_dir, 7, tmp_path / "shared")
    os.symlink(tmp_path / "shared" / "inner", root / "a")
    os.symlink(tmp_path / "shared", root / "b")
    walk = walk_folder(root)
    assert [p.relative_to(root).as_posix() for p in walk.files] == ["a/00006_lr.hea", "b/00007_lr.hea",
                                                                    "own/00005_lr.hea"]
    assert [(link.path.relative_to(root).as_posix(), link.reason) for link in walk.skipped_links] == [
        ("b/inner", WALKED)]
