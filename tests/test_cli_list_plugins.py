"""`ecgcl list-plugins`, `--version`, `--help` through click's runner."""

import json

from click.testing import CliRunner

from ecgcl import __version__
from ecgcl.cli.main import cli
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
