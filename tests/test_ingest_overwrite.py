"""`ingest --overwrite` only ever replaces an ecgcl store: never the source, a plain folder, a file or a symlink."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store


@pytest.fixture
def records(ptbxl_dir, tmp_path):
    """Three real PTB-XL records in a folder of their own."""
    folder = tmp_path / "par" / "raw"
    folder.mkdir(parents=True)
    for name in ("00001_lr", "00002_lr", "00003_lr"):
        for suffix in (".hea", ".dat"):
            shutil.copy(ptbxl_dir / "records100" / "00000" / f"{name}{suffix}", folder)
    return folder


def _ingest(source, out, *extra):
    return CliRunner().invoke(cli, ["ingest", str(source), str(out), "--quiet", "--workers", "1", *extra])


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_overwrite_replaces_an_existing_store(records, tmp_path):
    out = tmp_path / "store"
    assert _ingest(records, out).exit_code == 0
    again = _ingest(records, out, "--overwrite", "--limit", "2")
    assert again.exit_code == 0, again.output
    assert len(open_store(out)) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".store.")]  # no temporary or retired folders


@pytest.mark.parametrize("where", ["parent", "same", "inside"])
def test_overwrite_never_touches_the_source(records, where):
    out = {"parent": records.parent, "same": records, "inside": records / "store"}[where]
    before = _files(records)
    result = _ingest(records, out, "--overwrite")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(out) in result.output and "source" in result.output
    assert records.is_dir() and _files(records) == before


def test_overwrite_refuses_a_plain_folder_a_file_and_a_symlink(records, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "draft.txt").write_text("precious")
    plain_file = tmp_path / "notes.txt"
    plain_file.write_text("precious")
    store = tmp_path / "store"
    assert _ingest(records, store).exit_code == 0
    link = tmp_path / "link"
    link.symlink_to(store, target_is_directory=True)
    for out, reason in ((folder, "not an ecgcl store"), (plain_file, "is a file"), (link, "symbolic link")):
        result = _ingest(records, out, "--overwrite")
        assert result.exit_code == 2 and reason in result.output and "Traceback" not in result.output, result.output
    assert (folder / "draft.txt").read_text() == "precious" and plain_file.read_text() == "precious"
    assert link.is_symlink() and len(open_store(store)) == 3


def test_overwrite_refuses_a_folder_with_a_fake_manifest(records, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    for name in ("signals.npy", "metadata.csv"):
        (fake / name).write_text("mine")
    (fake / "manifest.json").write_text("{}")
    result = _ingest(records, fake, "--overwrite")
    assert result.exit_code == 2 and "not an ecgcl store" in result.output
    assert (fake / "signals.npy").read_text() == "mine"
