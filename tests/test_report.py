"""`OUT/report.html`: written by every `ecgcl run` (and grid), rebuilt by `ecgcl report OUT`, self-contained
(images inlined, nothing fetched), user text escaped, and rendered by a real headless Chromium without errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--repeats", "1",
        "--pretrain-epochs", "1", "--finetune-epochs", "1", "--device", "cpu"]
DATA_URI = "data:image/png;base64,"


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["run", *TINY, *args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def run_folder(tiny_store, tmp_path_factory) -> Path:
    """One tiny run with the robustness report (every kind of table and plot a run writes)."""
    out = tmp_path_factory.mktemp("report") / "run"
    _run(["--data", str(tiny_store), "--out", str(out), "--robustness", "--label-fraction", "0.5,1.0"])
    return out


def _tables(html: str) -> int:
    return html.count("<table")


def test_a_run_writes_a_self_contained_report_with_every_table_and_plot(run_folder):
    html = (run_folder / "report.html").read_text(encoding="utf-8")
    # data, test metrics, paired differences, units, per class, robustness, config
    assert _tables(html) == 7
    for title in ("Test metrics", "Paired differences", "Units:", "Per class (test)", "Robustness", "Configuration"):
        assert title in html, title
    # values of summary.csv appear as shown (mean to 3 decimals), and every unit's stopping reason
    summary = pd.read_csv(run_folder / "summary.csv")
    for value in summary.loc[summary["baseline"].isna(), "auroc_mean"]:
        assert f"{value:.3f}" in html
    for stopped in pd.read_csv(run_folder / "metrics.csv")["stopped"].dropna().unique():
        assert f"<td>{stopped}</td>" in html
    # per-class rows come from metrics.json
    classes = next(iter(json.loads((run_folder / "metrics.json").read_text())))["per_class"]
    assert all(f"<td>{name}</td>" in html for name in classes)
    # every PNG of the folder inlined, nothing fetched from anywhere
    pngs = sorted(p.name for p in run_folder.glob("*.png"))
    assert {"label_efficiency.png", "loss_curves.png", "training_curves.png", "robustness.png"} <= set(pngs)
    assert html.count(DATA_URI) == len(pngs)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html
    # relative links to the raw files
    for name in ("summary.csv", "metrics.csv", "metrics.json", "config.json", "robustness.csv", "history.jsonl"):
        assert f'href="{name}"' in html, name
    assert "ecgcl run --config" in html


def test_ecgcl_report_rebuilds_the_same_page(run_folder):
    before = (run_folder / "report.html").read_bytes()
    (run_folder / "report.html").unlink()
    result = CliRunner().invoke(cli, ["report", str(run_folder)])
    assert result.exit_code == 0, result.output
    assert (run_folder / "report.html").read_bytes() == before


def test_user_text_is_escaped(run_folder, tmp_path):
    hostile = tmp_path / "a<script>alert(1)<b>"
    shutil.copytree(run_folder, hostile, ignore=shutil.ignore_patterns("repeats"))
    config = json.loads((hostile / "config.json").read_text())
    (hostile / "config.json").write_text(json.dumps({**config, "task": "<img src=x onerror=alert(2)>"}))
    result = CliRunner().invoke(cli, ["report", str(hostile)])
    assert result.exit_code == 0, result.output
    html = (hostile / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html and "<b>" not in html
    assert "a&lt;script&gt;alert(1)&lt;b&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html


@pytest.mark.parametrize("folder, message", [("missing", "is not a folder"), ("empty", "config.json")])
def test_report_of_a_bad_folder_is_one_line_exit_2(tmp_path, folder, message):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["report", str(tmp_path / folder)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(tmp_path / folder) in lines[0]


def test_a_grid_report_links_its_cells_and_shows_the_grid(tiny_store, tmp_path):
    out = tmp_path / "grid"
    _run(["--data", str(tiny_store), "--out", str(out), "--objective", "contrastive", "--objective", "byol",
          "--methods", "pretrained_linear"])
    html = (out / "report.html").read_text(encoding="utf-8")
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert len(cells) == 2
    for cell in cells:
        assert f'href="cells/{cell}/report.html"' in html
        assert (out / "cells" / cell / "report.html").is_file()
    assert html.count(DATA_URI) == 1 and 'href="grid.png"' in html and 'href="grid.csv"' in html
    grid = pd.read_csv(out / "grid.csv")
    assert "Grid" in html and all(f"<td>{c}</td>" in html for c in grid["cell"].unique())


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


CHECK_IMAGES = """<script>window.addEventListener("load", () => { document.body.setAttribute("data-broken",
  Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length); });</script></body>"""


def test_the_report_renders_in_headless_chromium(run_folder, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install chromium)")
    page = tmp_path / "report.html"
    html = (run_folder / "report.html").read_text(encoding="utf-8")
    # a copy with a check that every image decoded (the report itself has no script)
    page.write_text(html.replace("</body>", CHECK_IMAGES), encoding="utf-8")
    flags = [browser, "--headless=new", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table") == _tables(html) == 7
    assert dom.stdout.count("<img") == html.count(DATA_URI)
    assert 'data-broken="0"' in dom.stdout, "an image did not decode"
    shot = tmp_path / "shot.png"
    rendered = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3000",
                               (run_folder / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0 and shot.is_file(), rendered.stderr[-2000:]
    for log in (dom.stderr, rendered.stderr):
        assert not re.search(r"Uncaught|CONSOLE", log), log[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    rows = pixels.std(axis=(1, 2))  # text, table borders and plots make rows that are not one colour
    assert (rows > 0.05).mean() > 0.2, "the page looks blank"
    assert np.ptp(pixels) > 0.5
