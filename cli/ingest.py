"""`ecgcl ingest SOURCE OUT`: read records into a memory-mapped store and summarise what was skipped and why."""

from __future__ import annotations

import click


@click.command("ingest")
@click.argument("source", type=click.Path(exists=True, path_type=str))
@click.argument("out", type=click.Path(path_type=str))
@click.option("--fs", type=float, help="Output sampling rate in Hz (default: the rate of the first record).")
@click.option("--length", type=float, help="Output length in seconds; longer records are cropped (default: first record's).")
@click.option("--leads", default="standard", show_default=True,
              help="Comma-separated leads in output order, e.g. 'I,II,V1'; 'standard' = I, II, III, aVR, aVL, aVF, V1-V6.")
@click.option("--filter", "band", metavar="LOW-HIGH", help="Zero-phase Butterworth band-pass in Hz, e.g. 0.5-40 ('0.5-' high-pass).")
@click.option("--pad", is_flag=True, help="Zero-pad records shorter than --length instead of skipping them.")
@click.option("--strict", is_flag=True, help="Stop at the first bad record instead of skipping it.")
@click.option("--workers", type=click.IntRange(min=1), help="Parallel workers (default: CPU count, at most 8).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it already exists.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N records (quick trials).")
@click.option("--ptbxl-resolution", type=click.Choice(["lr", "hr"]),
              help="PTB-XL: records100 (lr) or records500 (hr); default hr when --fs > 100, else lr.")
@click.option("--min-likelihood", type=float, default=0.0, show_default=True,
              help="PTB-XL: keep diagnostic statements with at least this likelihood when building labels.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(source: str, out: str, fs: float | None, length: float | None, leads: str, band: str | None, pad: bool,
           strict: bool, workers: int | None, overwrite: bool, limit: int | None, ptbxl_resolution: str | None,
           min_likelihood: float, quiet: bool) -> None:
    """Ingest WFDB / PTB-XL / numpy / parquet records from SOURCE into a store at OUT.

    Bad records (missing or truncated signal files, corrupt headers, missing leads, NaNs, flat leads, too short)
    are skipped, counted and listed in OUT/manifest.json.
    """
    from rich.console import Console

    from ecgcl.data.ingest import ingest as run_ingest

    console = Console(stderr=True)
    result = run_ingest(source, out, fs=fs, length=length, leads=leads, band=band, pad=pad, strict=strict,
                        workers=workers, overwrite=overwrite, limit=limit, ptbxl_resolution=ptbxl_resolution,
                        min_likelihood=min_likelihood, progress=not quiet and console.is_terminal)
    print_summary(result)


def print_summary(result) -> None:
    """Counts, output shape and skip reasons as rich tables."""
    from rich.console import Console
    from rich.table import Table

    manifest = result.manifest
    counts = manifest["counts"]
    table = Table(title=f"Store {result.path}", show_header=False)
    table.add_row("records found", str(counts["found"]))
    table.add_row("written", f"[green]{counts['written']}[/]")
    table.add_row("skipped", f"[red]{counts['skipped']}[/]" if counts["skipped"] else "0")
    table.add_row("labelled / unlabelled", f"{counts['labelled']} / {counts['unlabelled']}")
    table.add_row("patients", str(counts["patients"]))
    table.add_row("shape", f"{counts['written']} x {len(manifest['leads'])} leads x {manifest['samples']} samples "
                           f"({manifest['fs']:g} Hz, {manifest['length']:g} s)")
    table.add_row("filter", str(manifest["preprocessing"]["filter"] or "none"))
    table.add_row("hash", manifest["hash"])
    console = Console()
    console.print(table)
    if result.skipped:
        reasons = Table(title="Skipped records")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        reasons.add_column("example")
        for category, count in manifest["skip_reasons"].items():
            example = next(s for s in result.skipped if s.category == category)
            reasons.add_row(category, str(count), f"{example.record_id}: {example.detail}")
        console.print(reasons)
        console.print("Every skipped record is listed in manifest.json under 'skipped'.")
