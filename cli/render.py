"""Rich tables for the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
error_console = Console(stderr=True)


def print_components(components: Sequence) -> None:
    """One row per component: name, kind, source, version, parameters."""
    table = Table(title="Registered components", title_justify="left")
    for column in ("name", "kind", "source", "version", "parameters", "description"):
        table.add_column(column, overflow="fold")
    for c in components:
        params = ", ".join(p.describe() for p in c.parameters)
        table.add_row(*(escape(str(v)) for v in (c.name, c.kind, c.source.name, c.source.version, params,
                                                 c.description)))
    if not components:
        console.print("No components match.")
        return
    console.print(table)


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
        from ecgcl.protocol.results import counts_caption, per_class_table

        console.print(per_class_table(result["per_class"]))
        records = result.get("test_records", result.get("records"))
        caption = counts_caption([{"repeat": 0, "test_records": records, "per_class": result["per_class"]}])
        if "warning" in caption:
            console.print(caption.splitlines()[-1], markup=False, highlight=False)
