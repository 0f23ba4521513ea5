"""`ecgcl show`: records drawn as the standard 12-lead sheet, read back as images.

The sheet is checked in pixels: its size against the paper size (25 mm/s, 10 mm/mV), a trace in each of the 12
panels and in the rhythm strip, and, for a staircase signal, each trace at the height its lead and column must
have (which lead goes where, which 2.5 s each column shows, and 10 mm per mV)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from ecgcl.cli.main import cli
from ecgcl.data.sheet import FOOTER_MM, MARGIN_MM, PULSE_MM, ROW_MM, SHEET_ROWS, WIDTH_MM
from ecgcl.data.show import draw_sheet, show
from ecgcl.data.store import open_store, write_store

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # upper case, as PTB-XL spells them


def _store(path: Path, signals: np.ndarray, leads: list[str], fs: float, labels=None) -> Path:
    n = len(signals)
    metadata = pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [str(i) for i in range(n)],
                             "labels": labels or [""] * n})
    return write_store(path, signals.astype(np.float32), metadata, {"fs": fs, "leads": leads, "units": "mV"})


def _staircase(fs: float, seconds: float) -> np.ndarray:
    """(1, 12, samples): lead k is 0.1 (k - 6) mV plus 0.2 mV per 2.5 s column it is in."""
    t = np.arange(int(seconds * fs)) / fs
    return (0.1 * (np.arange(12)[:, None] - 6) + 0.2 * np.floor(t / 2.5)[None, :])[None]


def _dark(image: np.ndarray, box, inner=(0.2, 0.95)) -> np.ndarray:
    """(rows, columns) of the trace pixels in the middle of a panel box: dark, where even the grid's minor and major
    lines, blended, keep red above 220."""
    left, top, right, bottom = box
    x0, x1 = left + int(inner[0] * (right - left)), left + int(inner[1] * (right - left))
    rows, cols = np.nonzero(image[top:bottom, x0:x1, 0] < 160)
    return np.stack([rows + top, cols + x0], axis=1)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_12_lead_sheet_puts_each_lead_and_second_where_the_paper_does(tmp_path):
    store = _store(tmp_path / "s", _staircase(500, 10), LEADS, 500.0)
    (sheet,) = draw_sheet(store, [0], tmp_path / "sheet.png", dpi=120)
    image = _read(sheet.path)
    px_mm = 120 / 25.4
    width_mm, height_mm = PULSE_MM + WIDTH_MM + 2 * MARGIN_MM, 4 * ROW_MM + 2 * MARGIN_MM + FOOTER_MM
    assert image.shape[1::-1] == sheet.size
    assert sheet.size == pytest.approx((width_mm * px_mm, height_mm * px_mm), abs=1)
    assert len(sheet.panels) == 13
    value = {lead: 0.1 * (k - 6) for k, lead in enumerate(["I", "II", "III", "aVR", "aVL", "aVF",
                                                            "V1", "V2", "V3", "V4", "V5", "V6"])}
    for row, names in enumerate(SHEET_ROWS):
        for col, name in enumerate(names):
            box = sheet.panels[name]
            assert (box[2] - box[0]) == pytest.approx(62.5 * px_mm, abs=1)
            dark = _dark(image, box)
            assert len(dark) > 100, name
            expected = box[1] + (ROW_MM / 2 - 10 * (value[name] + 0.2 * col)) * px_mm  # 10 mm/mV up from the middle
            assert np.median(dark[:, 0]) == pytest.approx(expected, abs=2), name
    strip = sheet.panels["rhythm II"]
    assert (strip[2] - strip[0]) == pytest.approx(250 * px_mm, abs=1)
    quarter = (strip[2] - strip[0]) // 4
    for col in range(4):
        box = (strip[0] + col * quarter, strip[1], strip[0] + (col + 1) * quarter, strip[3])
        expected = strip[1] + (ROW_MM / 2 - 10 * (value["II"] + 0.2 * col)) * px_mm
        assert np.median(_dark(image, box)[:, 0]) == pytest.approx(expected, abs=2)
    grid = image[strip[1] + 2, strip[0]:strip[2]].astype(int)  # a pixel row between two minor lines ...
    major = np.flatnonzero((grid[:, 0] > 200) & (grid[:, 1] < 200))  # ... crosses the reddest, major lines
    starts = major[np.r_[True, np.diff(major) > 2]]
    assert np.median(np.diff(starts)) == pytest.approx(5 * px_mm, abs=1)  # every 5 mm


def test_real_records_draw_a_trace_in_every_panel_and_footer_names_them(tiny_store, tmp_path):
    store = open_store(tiny_store)
    sheets = show(store, records="1,2", out=tmp_path / "sheet.png")
    assert [s.path.name for s in sheets] == ["sheet_1.png", "sheet_2.png"]
    for sheet in sheets:
        image = _read(sheet.path)
        assert set(sheet.panels) == {n for row in SHEET_ROWS for n in row} | {"rhythm II"}
        assert all(len(_dark(image, box)) > 50 for box in sheet.panels.values())


def test_the_shared_500_hz_records_draw_as_sheets(ptbxl_dir, tmp_path):
    """PTB-XL at 500 Hz (the shared subset where present, else the fixture's records500)."""
    import wfdb

    files = sorted((ptbxl_dir / "records500").rglob("*_hr.hea"))[:2]
    signals = np.stack([wfdb.rdrecord(str(f.with_suffix(""))).p_signal.T for f in files])
    store = _store(tmp_path / "s500", np.nan_to_num(signals), LEADS, 500.0, labels=["NORM", ""])
    sheets = show(store, random=2, seed=1, out=tmp_path / "folder")
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["r0.png", "r1.png"]
    for sheet in sheets:
        image = _read(sheet.path)
        assert all(len(_dark(image, box)) > 50 for box in sheet.panels.values())


def test_a_one_lead_store_draws_one_strip(tiny_store, tmp_path):
    real = open_store(tiny_store)
    store = _store(tmp_path / "one", real.read(np.arange(3))[:, [1]], ["II"], real.fs)
    (sheet,) = show(store, records="r0", out=tmp_path / "one.png", dpi=100)
    assert list(sheet.panels) == ["II"]
    image = _read(sheet.path)
    assert image.shape[0] == pytest.approx((ROW_MM + 2 * MARGIN_MM + FOOTER_MM) * 100 / 25.4, abs=1)
    assert len(_dark(image, sheet.panels["II"])) > 100


def test_a_short_record_draws_what_there_is(tmp_path):
    store = _store(tmp_path / "short", _staircase(250, 4.0), LEADS, 250.0)  # 4 s: columns 0 and 1 only
    (sheet,) = show(store, records="r0", out=tmp_path / "short.png", dpi=100)
    image = _read(sheet.path)
    for col, name in enumerate(("I", "aVL", "V3", "V4")):
        assert (len(_dark(image, sheet.panels[name])) > 50) == (col < 2), name
    strip = sheet.panels["rhythm II"]
    drawn = _dark(image, strip, inner=(0.05, 1.0))[:, 1]
    assert drawn.max() - strip[0] == pytest.approx(0.4 * (strip[2] - strip[0]), abs=3)


def test_pdf_holds_a_page_per_record_and_svg_is_svg(tiny_store, tmp_path):
    sheets = show(tiny_store, records=["1", "2", "3"], out=tmp_path / "sheets.pdf")
    data = (tmp_path / "sheets.pdf").read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type /Page\b", data)) == 3
    assert {s.path for s in sheets} == {tmp_path / "sheets.pdf"}
    (sheet,) = show(tiny_store, records="1", out=tmp_path / "one.svg")
    assert sheet.path == tmp_path / "one.svg" and "<svg" in sheet.path.read_text()[:2000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.svg", "sheets.pdf"]  # no temporary file left


def _cli(*args):
    return CliRunner().invoke(cli, ["show", *[str(a) for a in args]])


def test_task_and_class_pick_records_of_that_class(tiny_store, tmp_path):
    result = _cli(tiny_store, "--task", "superclasses", "--class", "MI", "--n", "3", "--out", tmp_path / "mi")
    assert result.exit_code == 0, result.output
    ids = [re.search(r"record (\S+)\)", line).group(1) for line in result.output.splitlines()]
    labels = open_store(tiny_store).metadata.set_index("record_id")["labels"]
    assert len(ids) == 3 and all("MI" in labels[i].split(";") for i in ids)
    assert sorted(p.name for p in (tmp_path / "mi").iterdir()) == sorted(f"{i}.png" for i in ids)


def test_random_with_a_seed_is_reproducible(tiny_store, tmp_path):
    first = [s.record_id for s in show(tiny_store, random=4, seed=7, out=tmp_path / "a")]
    again = [s.record_id for s in show(tiny_store, random=4, seed=7, out=tmp_path / "b")]
    store = open_store(tiny_store)
    drawn = np.random.default_rng(7).choice(len(store), 4, replace=False)
    assert first == again == store.metadata["record_id"].iloc[drawn].tolist()


def test_a_file_in_a_folder_not_made_yet_makes_the_folder(tiny_store, tmp_path):
    (sheet,) = show(tiny_store, records="1", out=tmp_path / "figs" / "deep" / "sheet.png")
    assert sheet.path == tmp_path / "figs" / "deep" / "sheet.png" and sheet.path.is_file()


@pytest.mark.parametrize("args, message", [
    (["--records", "1,nosuch"], "no record 'nosuch'"),
    (["--task", "superclasses", "--class", "MII"], "has no class 'MII' (did you mean 'MI'?)"),
    ([], "no records chosen"),
    (["--records", "1", "--random", "2"], "--records and --random given"),
    (["--class", "MI"], "--task and --class go together"),
    (["--random", "2", "--n", "3"], "--n goes with --task"),
    (["--records", "1", "--out", "x.jpg"], "expected a .png, .pdf or .svg"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tiny_store, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = _cli(tiny_store, *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert list(tmp_path.iterdir()) == []
