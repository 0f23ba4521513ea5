"""`ecgcl list-plugins`: every registered component and every plugin that failed to load."""

from __future__ import annotations

import json

import click

from ecgcl.registry import KINDS


@click.command("list-plugins")
@click.argument("pattern", required=False)
@click.option("--kind", type=click.Choice(KINDS), help="Only components of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_plugins(pattern: str | None, kind: str | None, as_json: bool) -> None:
    """List registered augmentations, encoders, losses and tasks; PATTERN is a glob on the name (e.g. 'cnn*')."""
    from ecgcl.manager import get_plugin_manager

    manager = get_plugin_manager()
    components = manager.registry.components(kind, pattern)
    if as_json:
        payload = {
            "components": [c.as_dict() for c in components],
            "failures": [f.as_dict() for f in manager.failures],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from ecgcl.cli.render import print_components, print_failures

    print_components(components)
    print_failures(manager.failures)
