"""The `register_commands` hook: a plugin's click command joins `ecgcl`; a failing or clashing one is a failure."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import ecgcl
from ecgcl.errors import PluginLoadError
from ecgcl.manager import PluginManager
from ecgcl.registry import Source


class GoodCommands:
    @ecgcl.hookimpl
    def register_commands(self, cli):
        @click.command("hello")
        @click.argument("name")
        def hello(name: str) -> None:
            """Say hello."""
            click.echo(f"hello {name}")

        cli.add_command(hello)


class FailingCommands:
    @ecgcl.hookimpl
    def register_commands(self, cli):
        raise RuntimeError("cannot build my command")


class ClashingCommands:
    @ecgcl.hookimpl
    def register_commands(self, cli):
        cli.add_command(click.Command("ingest", callback=lambda: None))


def _group() -> click.Group:
    group = click.Group("ecgcl")
    group.add_command(click.Command("ingest", callback=lambda: click.echo("built-in ingest")))
    return group


def _manager(*plugins) -> PluginManager:
    manager = PluginManager()
    for index, plugin in enumerate(plugins):
        manager.register(plugin, f"p{index}", Source(f"dist-{index}", "1.0", f"entry{index}"))
    return manager


def test_a_plugin_command_runs_and_failing_or_clashing_hooks_are_failures():
    group = _group()
    manager = _manager(GoodCommands(), FailingCommands(), ClashingCommands())
    manager.add_commands(group)
    assert sorted(group.commands) == ["hello", "ingest"]
    assert CliRunner().invoke(group, ["hello", "ecg"]).output == "hello ecg\n"
    assert CliRunner().invoke(group, ["ingest"]).output == "built-in ingest\n"  # the clash was undone
    failures = {f.distribution: f.error for f in manager.failures}
    assert set(failures) == {"dist-1", "dist-2"}
    assert "cannot build my command" in failures["dist-1"] and "ingest already exist" in failures["dist-2"]


def test_strict_plugins_raise_on_a_failing_command_hook():
    manager = _manager(FailingCommands())
    manager.strict = True
    with pytest.raises(PluginLoadError, match="entry0.*cannot build my command"):
        manager.add_commands(_group())
