"""`ecgcl report OUT`: (re)build the self-contained `OUT/report.html` of a results folder from its files."""

from __future__ import annotations

from pathlib import Path

import click

from ecgcl.errors import EcgclError


@click.command("report")
@click.argument("out", type=click.Path(path_type=Path))
def report(out: Path) -> None:
    """Write OUT/report.html from the results folder OUT alone (config, data, every result table with the
    warnings, per-class metrics, the plots inlined, links to the raw files): one page that opens anywhere,
    without network. `ecgcl run` writes it at the end of every run and grid; this rebuilds it."""
    from ecgcl.protocol.report import write_report

    if not out.is_dir():
        raise EcgclError(f"{out} is not a folder: expected a results folder written by `ecgcl run` (--out)")
    click.echo(f"wrote {write_report(out)}")
