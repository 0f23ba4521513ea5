"""Fuzz test of ingest (issue 13, item 3): mutated headers, signal files, CSVs, npz and parquet files built from
real PTB-XL records. Whatever the input: no traceback, exit code 0 or 2, and either a valid store or nothing
(no store, no temporary folder, no lock) at OUT."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import is_store, open_store

SEED = 13
SOURCE = "00001_lr"
HEADER_JUNK = ["0", "-1", "nan", "inf", "1e11", "-5", "abc", "", "16+99999999", "212", "0(0)/mV", "1e-30",
               "../x.dat", "/etc/hostname", "x.dat", "99", "3000000000", "\x00\xff", "12"]


def mutate_text(text: str, rng: np.random.Generator) -> str:
    """One random edit of a text file: a token swapped for junk, a line dropped or repeated, a cut, garbage."""
    lines = text.splitlines()
    kind = rng.integers(5)
    if kind == 0 and lines:
        i = rng.integers(len(lines))
        tokens = lines[i].split(" ")
        tokens[rng.integers(len(tokens))] = HEADER_JUNK[rng.integers(len(HEADER_JUNK))]
        lines[i] = " ".join(tokens)
    elif kind == 1 and len(lines) > 1:
        del lines[rng.integers(len(lines))]
    elif kind == 2 and lines:
        i = rng.integers(len(lines))
        lines.insert(i, lines[i])
    elif kind == 3:
        return text[: rng.integers(len(text) + 1)]
    else:
        return text + bytes(rng.integers(0, 256, 40, dtype=np.uint8)).decode("latin-1")
    return "\n".join(lines) + "\n"


def mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """Truncate, flip bytes in, or empty a binary file."""
    kind = rng.integers(3)
    if kind == 0:
        return data[: rng.integers(len(data) + 1)]
    if kind == 1:
        array = bytearray(data)
        for i in rng.integers(0, len(array), 16):
            array[i] = int(rng.integers(256))
        return bytes(array)
    return b""


def check_outcome(result, out) -> None:
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        assert is_store(out)
        store = open_store(out)
        assert len(store) > 0 and np.isfinite(store.signals[:]).all()
    else:
        assert not out.exists() and result.output.startswith("Error: ")
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == [], leftovers


def test_fuzzed_wfdb_records(ptbxl_dir, tmp_path):
    rng = np.random.default_rng(SEED)
    real = ptbxl_dir / "records100" / "00000"
    folder = tmp_path / "wfdb"
    folder.mkdir()
    header = (real / f"{SOURCE}.hea").read_text()
    data = (real / f"{SOURCE}.dat").read_bytes()
    for i in range(40):
        name = f"m{i:02d}"
        text = header.replace(SOURCE, name)
        for _ in range(rng.integers(1, 3)):
            text = mutate_text(text, rng)
        (folder / f"{name}.hea").write_text(text, encoding="latin-1")
        (folder / f"{name}.dat").write_bytes(mutate_bytes(data, rng) if rng.random() < 0.5 else data)
    shutil.copy(real / f"{SOURCE}.hea", folder)
    shutil.copy(real / f"{SOURCE}.dat", folder)
    runner = CliRunner()
    whole = runner.invoke(cli, ["ingest", str(folder), str(tmp_path / "all"), "--fs", "100", "--length", "10",
                                "--workers", "1", "--quiet"])
    check_outcome(whole, tmp_path / "all")
    assert whole.exit_code == 0  # the intact record is always kept
    for i in range(0, 40, 3):
        out = tmp_path / f"one_{i}"
        check_outcome(runner.invoke(cli, ["ingest", str(folder / f"m{i:02d}.hea"), str(out), "--workers", "1"]), out)
        strict = tmp_path / f"strict_{i}"
        check_outcome(runner.invoke(cli, ["ingest", str(folder / f"m{i:02d}.hea"), str(strict), "--strict",
                                          "--fs", "100", "--length", "10", "--workers", "1"]), strict)


@pytest.fixture
def signals(ptbxl_dir):
    import wfdb

    names = ["00001_lr", "00002_lr", "00003_lr", "00004_lr"]
    return np.stack([wfdb.rdrecord(str(ptbxl_dir / "records100" / "00000" / n)).p_signal.T for n in names]
                    ).astype(np.float32)


def test_fuzzed_numpy_and_csv(signals, tmp_path):
    rng = np.random.default_rng(SEED + 1)
    runner = CliRunner()
    sidecar = pd.DataFrame({"record_id": ["a", "b", "c", "d"], "patient_id": [1, 1, 2, 3], "labels": ["NORM", "", "MI", "CD"],
                            "fs": [100.0] * 4}).to_csv(index=False)
    np.savez(tmp_path / "base.npz", signals=signals, fs=100.0)
    npz = (tmp_path / "base.npz").read_bytes()
    for i in range(16):
        case = tmp_path / f"case{i}"
        case.mkdir()
        np.save(case / "x.npy", signals)
        (case / "x.csv").write_text(mutate_text(sidecar, rng), encoding="latin-1")
        (case / "y.npz").write_bytes(mutate_bytes(npz, rng))
        for source in ("x.npy", "y.npz"):
            out = case / f"out_{source}"
            check_outcome(runner.invoke(cli, ["ingest", str(case / source), str(out), "--workers", "1"]), out)


def test_fuzzed_parquet(signals, tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(SEED + 2)
    runner = CliRunner()
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    table = pd.DataFrame({lead: list(signals[:, i]) for i, lead in enumerate(leads)})
    table["fs"] = 100.0
    table["patient_id"] = ["p1", "p1", "p2", "p3"]
    variants = [table, table.assign(fs=[100.0, np.nan, -1.0, 100.0]), table.assign(patient_id=[[1], [2], [3], [4]]),
                table.assign(fs=["a", "b", "c", "d"]), table.assign(I=[signals[0, 0][:10]] * 4),
                table.drop(columns=["fs"]), table.assign(record_id=["x", "x", "y", "z"])]
    for i, variant in enumerate(variants):
        variant.to_parquet(tmp_path / f"v{i}.parquet")
    base = (tmp_path / "v0.parquet").read_bytes()
    for i in range(8):
        (tmp_path / f"b{i}.parquet").write_bytes(mutate_bytes(base, rng))
    for path in sorted(tmp_path.glob("*.parquet")):
        out = tmp_path / f"out_{path.stem}"
        check_outcome(runner.invoke(cli, ["ingest", str(path), str(out), "--workers", "1"]), out)
