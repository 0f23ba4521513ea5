"""`ecgcl list-plugins`: every registered component and every plugin that failed to load; with a NAME, the
details of that component (parameters, defaults, which ones the runtime sets)."""

from __future__ import annotations

import json

import click

from ecgcl.registry import KINDS

_GLOB = set("*?[")


@click.command("list-plugins")
@click.argument("pattern", required=False)
@click.option("--kind", type=click.Choice(KINDS), help="Only components of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with every parameter) instead of tables.")
def list_plugins(pattern: str | None, kind: str | None, as_json: bool) -> None:
    """List registered augmentations, encoders, losses and tasks; PATTERN is a glob on the name (e.g. 'cnn*'), and an exact NAME shows that
    component's parameters."""
    from ecgcl.context import RUNTIME_OPTIONS
    from ecgcl.manager import get_plugin_manager

    manager = get_plugin_manager()
    registry = manager.registry
    if pattern and not _GLOB & set(pattern):  # an exact name (or alias): the detail view
        components = [registry.get(k, pattern) for k in ((kind,) if kind else KINDS) if (k, pattern) in registry]
        if not components:
            from ecgcl.errors import EcgclError, did_you_mean

            names = registry.names(kind)
            raise EcgclError(f"no {kind or 'component'} named {pattern!r}{did_you_mean(pattern, names)}; "
                             "`ecgcl list-plugins` lists them all")
    else:
        components = registry.components(kind, pattern)
    if as_json:
        payload = {
            "components": [c.as_dict() for c in components],
            "failures": [f.as_dict() for f in manager.failures],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from ecgcl.cli.render import print_component_detail, print_components, print_failures

    if pattern and not _GLOB & set(pattern) and components:
        for component in components:
            print_component_detail(component, RUNTIME_OPTIONS)
    else:
        print_components(components)
    print_failures(manager.failures)
