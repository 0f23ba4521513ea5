"""The ingest options have one home, `IngestOptions`: the click options of `ecgcl ingest`, the keyword arguments
of `ecgcl.data.ingest.ingest` and the manifest's `options` all come from its fields; and ingest reports progress
through a reporter (silent from Python, a rich bar from the CLI on a terminal only)."""

from __future__ import annotations

import inspect
import json
import shutil
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.ingest_options import RECORDED_KEYS, IngestOptions, option_flag
from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter

CLI_ONLY = {"source", "out", "labels", "id_column", "label_columns", "patient_column", "merge_labels", "quiet"}


@pytest.fixture
def records(ptbxl_dir, tmp_path):
    """Three real PTB-XL 100 Hz records in a folder of their own."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("00001_lr", "00002_lr", "00003_lr"):
        for suffix in (".hea", ".dat"):
            shutil.copy(ptbxl_dir / "records100" / "00000" / f"{name}{suffix}", folder)
    return folder


def _params() -> dict[str, click.Parameter]:
    return {p.name: p for p in cli.commands["ingest"].params}


def test_every_option_field_is_a_click_option_as_declared():
    params = _params()
    defaults = cli.commands["ingest"].make_context("ingest", ["SOURCE", "OUT"]).params
    declared = [f for f in fields(IngestOptions) if f.metadata["cli"]]
    assert {f.name for f in fields(IngestOptions) if not f.metadata["cli"]} == {"labels"}  # built from --labels ...
    for f in declared:
        param = params[f.name]
        assert param.opts == [option_flag(f.name)] and param.help == f.metadata["help"], f.name
        assert defaults[f.name] == f.default, f.name
        assert param.is_flag == (f.metadata["type"] is bool), f.name
        if f.metadata["choices"]:
            assert list(param.type.choices) == list(f.metadata["choices"])
        if f.metadata["minimum"] is not None:
            assert isinstance(param.type, click.IntRange) and param.type.min == f.metadata["minimum"]
        if f.metadata["metavar"]:
            assert param.metavar == f.metadata["metavar"]
    assert set(params) - {f.name for f in declared} == CLI_ONLY


def test_declaration_keeps_todays_flags_and_limits():
    params = _params()
    assert params["band"].opts == ["--filter"] and params["leads"].show_default and params["min_likelihood"].show_default
    assert isinstance(params["workers"].type, click.IntRange) and isinstance(params["limit"].type, click.IntRange)
    assert list(params["ptbxl_resolution"].type.choices) == ["lr", "hr"]


def test_python_api_takes_exactly_the_declared_options(records, tmp_path):
    signature = inspect.signature(ingest)
    assert list(signature.parameters) == ["source", "out", "options", "reporter", "values"]
    every = {f.name: f.default for f in fields(IngestOptions)}
    result = ingest(records, tmp_path / "store", **{**every, "workers": 1, "fs": 100.0, "length": 10.0})
    assert result.written == 3
    with pytest.raises(EcgclError, match="'not_an_option'"):
        ingest(records, tmp_path / "other", not_an_option=1)
    with pytest.raises(EcgclError, match="did you mean 'windows'"):
        ingest(records, tmp_path / "other", window=True)
    assert not (tmp_path / "other").exists()


def test_manifest_records_the_declared_fields_with_todays_values(records, tmp_path):
    result = ingest(records, tmp_path / "store", fs=100, length=10, workers=1, overwrite=False)
    recorded = result.manifest["options"]
    assert tuple(recorded) == RECORDED_KEYS
    assert recorded == {"fs": 100, "length": 10, "leads": list(STANDARD_LEADS), "filter": None, "pad": False,
                        "strict": False, "limit": None, "min_likelihood": 0.0, "resolution": None,
                        "windows": False, "window_stride": None, "lead_map": {}, "max_amplitude": None,
                        "patient_from_name": None, "format": None, "statements_as_labels": False,
                        "keep_patient_ids": False, "dtype": "float16"}
    assert json.loads((result.path / "manifest.json").read_text())["options"] == recorded


def test_cli_and_python_record_the_same_options(records, tmp_path):
    options = IngestOptions(fs=100, length=10, band="0.5-40", limit=2, workers=1, lead_map="X1=I")
    from_python = ingest(records, tmp_path / "a", options).manifest["options"]
    outcome = CliRunner().invoke(cli, ["ingest", str(records), str(tmp_path / "b"), "--fs", "100", "--length", "10",
                                       "--filter", "0.5-40", "--limit", "2", "--workers", "1", "--lead-map", "X1=I",
                                       "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    from_cli = json.loads((tmp_path / "b" / "manifest.json").read_text())["options"]
    assert from_cli == from_python and from_cli["filter"] == "0.5-40" and from_cli["limit"] == 2


def test_keywords_override_an_options_object(records, tmp_path):
    result = ingest(records, tmp_path / "store", IngestOptions(fs=100, length=10, limit=1), limit=2, workers=1)
    assert result.found == 2 and result.manifest["options"]["limit"] == 2


class Recorder(Reporter):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def stage(self, description, total):
        self.calls.append(("stage", description, total))

    def advance(self, completed, info):
        self.calls.append(("advance", completed, sorted(info)))

    def finished(self, note):
        self.calls.append(("finished",))


def test_python_ingest_prints_nothing_and_reports_to_its_reporter(records, tmp_path, capsys):
    ingest(records, tmp_path / "silent", fs=100, length=10, workers=1)
    assert capsys.readouterr() == ("", "")
    recorder = Recorder()
    ingest(records, tmp_path / "reported", fs=100, length=10, workers=1, reporter=recorder)
    assert capsys.readouterr() == ("", "")
    assert recorder.calls[0] == ("stage", "ingest", 3) and recorder.calls[-1] == ("finished",)
    assert recorder.calls[-2] == ("advance", 3, ["rate", "skipped"])


@pytest.mark.parametrize("terminal", [True, False])
def test_cli_shows_progress_only_on_a_terminal(records, tmp_path, monkeypatch, terminal):
    monkeypatch.setenv("TTY_COMPATIBLE", "1" if terminal else "0")  # rich's switch for "is a terminal"
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    outcome = CliRunner().invoke(cli, ["ingest", str(records), str(tmp_path / "store"), "--workers", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert ("rec/s" in outcome.stderr and "skipped" in outcome.stderr) == terminal
    quiet = CliRunner().invoke(cli, ["ingest", str(records), str(tmp_path / "quiet"), "--workers", "1", "--quiet"])
    assert quiet.exit_code == 0 and "rec/s" not in quiet.stderr
