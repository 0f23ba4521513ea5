"""`ecgcl list-plugins`, `--version`, `--help` through click's runner."""

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from ecgcl import __version__
from ecgcl.cli.main import cli
from ecgcl.context import RUNTIME_OPTIONS
from ecgcl.manager import create_plugin_manager


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_version_and_help():
    assert run("--version").output.strip() == f"ecgcl, version {__version__}"
    result = run("--help")
    assert result.exit_code == 0 and "list-plugins" in result.output


def test_json_lists_every_registered_component():
    result = run("list-plugins", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    expected = {(c.kind, c.name) for c in create_plugin_manager().registry}
    assert {(c["kind"], c["name"]) for c in payload["components"]} == expected
    assert isinstance(payload["failures"], list)


def test_kind_and_glob_filter():
    registry = create_plugin_manager().registry
    result = json.loads(run("list-plugins", "--kind", "encoder", "--json").output)
    assert {c["name"] for c in result["components"]} == set(registry.names("encoder"))
    result = json.loads(run("list-plugins", "zz_no_such*", "--json").output)
    assert result["components"] == []


def test_table_output_and_bad_kind():
    result = run("list-plugins")
    assert result.exit_code == 0
    assert "Registered components" in result.output or "No components match" in result.output
    bad = run("list-plugins", "--kind", "widget")
    assert bad.exit_code == 2 and "widget" in bad.output


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch):
    import ecgcl.manager

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(ecgcl.manager, "get_plugin_manager", interrupted)
    result = run("list-plugins")
    assert result.exit_code == 130 and "Interrupted" in result.output and "Traceback" not in result.output


@pytest.fixture
def narrow_console(monkeypatch):
    """The CLI's console as a 80-column terminal, captured."""
    import ecgcl.cli.render

    buffer = io.StringIO()
    monkeypatch.setattr(ecgcl.cli.render, "console", Console(file=buffer, width=80, color_system=None))
    return buffer


def test_table_fits_80_columns_and_leaves_parameters_to_the_detail_view(narrow_console):
    assert run("list-plugins").exit_code == 0
    lines = narrow_console.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "parameters" not in lines[2] and "description" in lines[2]
    for component in create_plugin_manager().registry:
        assert any(f" {component.name} " in line for line in lines), component.name
    assert "ecgcl list-plugins NAME" in lines[-1]


BUILTINS = create_plugin_manager(entry_points=False).registry  # what ecgcl ships, whatever else is installed


@pytest.mark.parametrize("kind, name", sorted((c.kind, c.name) for c in BUILTINS))
def test_detail_view_shows_every_parameter_whole_at_80_columns(narrow_console, kind, name):
    component = BUILTINS.get(kind, name)
    result = run("list-plugins", "--kind", kind, name)
    assert result.exit_code == 0, result.output
    lines = narrow_console.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith(f"{kind} {name}  (ecgcl ")
    for p in component.parameters:
        row = next(line for line in lines if line.startswith(f"│ {p.name} "))
        assert ("(required)" if p.required else repr(p.default)) in row
        assert ("set by the runtime" in row) == (p.name in RUNTIME_OPTIONS)


def test_json_gives_parameters_with_the_runtime_ones_marked():
    payload = json.loads(run("list-plugins", "cnn", "--json").output)
    [cnn] = payload["components"]
    params = {p["name"]: p for p in cnn["parameters"]}
    assert params["width"] == {"name": "width", "required": False, "default": 16, "annotation": "int",
                               "runtime": False}
    assert params["length"]["runtime"] and params["in_leads"]["runtime"] and cnn["plugin"] == "ecgcl.plugins.encoders"


def test_unknown_exact_name_suggests_one():
    result = run("list-plugins", "cnn_lsmt")
    assert result.exit_code == 2 and "no component named 'cnn_lsmt' (did you mean 'cnn_lstm'?)" in result.output
