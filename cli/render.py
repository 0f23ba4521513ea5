"""Rich tables for the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
error_console = Console(stderr=True)


def print_components(components: Sequence) -> None:
    """One row per component: name, kind, source, version, description (parameters: the detail view)."""
    if not components:
        console.print("No components match.")
        return
    table = Table(title="Registered components", title_justify="left")
    for column in ("name", "kind", "source", "version"):
        table.add_column(column, no_wrap=column in ("name", "kind", "version"), overflow="fold")
    table.add_column("description", ratio=1, overflow="fold")
    for c in components:
        table.add_row(escape(c.name), escape(c.kind), escape(c.source.name), escape(c.source.version), escape(c.description))
    console.print(table)
    console.print("Parameters of one component: ecgcl list-plugins NAME", style="dim")


def print_component_detail(component, runtime_options: dict[str, str]) -> None:
    """One component: where it comes from, its documentation and one row per parameter."""
    source = component.source
    plugin = f", plugin {source.plugin}" if getattr(source, "plugin", "") else ""
    console.print(Text.assemble((f"{component.kind} {component.name}", "bold"), f"  ({source.name} {source.version}"
                                f"{plugin})"))
    if component.aliases:
        console.print(Text(f"aliases: {', '.join(component.aliases)}"))
    if component.doc:  # the first paragraph, reflowed to the terminal
        console.print(Text(" ".join(component.doc.split("\n\n")[0].split())))
    table = Table(title="parameters", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("default", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("notes", ratio=1, overflow="fold")
    for p in component.parameters:
        note = f"set by the runtime: {runtime_options[p.name]}" if p.name in runtime_options else ""
        default = "(required)" if p.required else repr(p.default)
        table.add_row(Text(p.name), Text(default), Text(p.annotation), Text(note))
    console.print(table if component.parameters else Text("no parameters"))


def print_failures(failures: Sequence) -> None:
    """A second table for plugins that failed to load, so a broken plugin is visible but harmless."""
    if not failures:
        return
    table = Table(title="Plugins that failed to load", title_justify="left", style="red")
    for column in ("plugin", "distribution", "version", "error"):
        table.add_column(column, overflow="fold")
    for f in failures:
        table.add_row(*(escape(str(v)) for v in (f.name, f.distribution, f.version, f.error)))
    error_console.print(table)


def print_metrics(console: Console, result: dict, title: str) -> None:
    """A two-column table of metric names and values (floats with 4 decimals)."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key != "per_class":
            table.add_row(escape(str(key)), f"{value:.4f}" if isinstance(value, float) else escape(str(value)))
    console.print(table)
    if "per_class" in result:
        from ecgcl.cli.tables import per_class_table
        from ecgcl.protocol.results import counts_caption

        console.print(per_class_table(result["per_class"]))
        records = result.get("test_records", result.get("records"))
        caption = counts_caption([{"repeat": 0, "test_records": records, "per_class": result["per_class"]}])
        if "warning" in caption:
            console.print(caption.splitlines()[-1], markup=False, highlight=False)
