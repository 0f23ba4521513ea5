"""`ecgcl ingest SOURCE OUT`: read records into a memory-mapped store and summarise what was skipped and why."""

from __future__ import annotations

from contextlib import contextmanager

import click

from ecgcl.cli.label_options import label_options, print_annotations, read_labels_option


@click.command("ingest")
@click.argument("source", type=click.Path(path_type=str))
@click.argument("out", type=click.Path(path_type=str))
@click.option("--fs", type=float, help="Output sampling rate in Hz (default: the most common rate among the records).")
@click.option("--length", type=float,
              help="Output length (or window length) in seconds; longer records are cropped (default: the most "
                   "common record length).")
@click.option("--leads", default="standard", show_default=True,
              help="Comma-separated leads in output order, e.g. 'I,II,V1'; 'standard' = I, II, III, aVR, aVL, aVF, V1-V6.")
@click.option("--filter", "band", metavar="LOW-HIGH", help="Zero-phase Butterworth band-pass in Hz, e.g. 0.5-40 ('0.5-' high-pass).")
@click.option("--lead-map", metavar="NAME=LEAD,...",
              help="Extra lead names for this source, e.g. 'X1=I,X2=II' (DI/D1/Lead I/ECG I, C1-C6 ... are known).")
@click.option("--windows", is_flag=True, help="Cut each record into consecutive --length windows (one row each) "
                                               "instead of keeping its first --length seconds.")
@click.option("--window-stride", type=float, metavar="SECONDS",
              help="Like --windows with a window every SECONDS (less than --length: overlapping windows).")
@click.option("--pad", is_flag=True, help="Zero-pad records (and last windows) shorter than --length instead of "
                                          "skipping them; valid_samples records the real length.")
@click.option("--max-amplitude", type=float, metavar="MV",
              help="Skip records whose median lead peak-to-peak exceeds MV millivolts (those above 20 mV are "
                   "flagged in the manifest either way).")
@click.option("--strict", is_flag=True, help="Stop at the first bad record instead of skipping it.")
@click.option("--workers", type=click.IntRange(min=1), help="Parallel workers (default: CPU count, at most 8).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it already exists.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N records (quick trials).")
@click.option("--ptbxl-resolution", type=click.Choice(["lr", "hr"]),
              help="PTB-XL: records100 (lr) or records500 (hr); default hr when --fs > 100, else lr.")
@click.option("--min-likelihood", type=float, default=0.0, show_default=True,
              help="PTB-XL: keep diagnostic statements with at least this likelihood when building labels.")
@label_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(source: str, out: str, fs: float | None, length: float | None, leads: str, band: str | None,
           lead_map: str | None, windows: bool, window_stride: float | None, pad: bool, max_amplitude: float | None,
           strict: bool, workers: int | None, overwrite: bool, limit: int | None, ptbxl_resolution: str | None,
           min_likelihood: float, labels: str | None, id_column: str | None, label_columns: str | None,
           patient_column: str | None, merge_labels: bool, patient_from_name: str | None, quiet: bool) -> None:
    """Ingest records from SOURCE into a store at OUT.

    SOURCE: a PTB-XL, CODE-15 (HDF5 + exams.csv), MIMIC-IV-ECG (record_list.csv) or WFDB folder (RECORDS files
    honoured), a record list (RECORDS, .txt), a .hea/.mat record or record stem, a .npy/.npz or .parquet file.

    Bad records (missing or truncated signal files, corrupt headers, missing leads, unknown units, NaNs, flat
    leads, too short) are skipped, counted and listed in OUT/manifest.json. Labels come from WFDB `#Dx:` header
    lines (SNOMED-CT codes as abbreviations), the PTB-XL database, or a table given with --labels.
    """
    from rich.console import Console

    from ecgcl.data.ingest import ingest as run_ingest

    table = read_labels_option(labels, id_column, label_columns, patient_column, merge_labels)
    console = Console(stderr=True)
    with _sigterm_as_interrupt():
        result = run_ingest(source, out, fs=fs, length=length, leads=leads, band=band, pad=pad, strict=strict,
                            workers=workers, overwrite=overwrite, limit=limit, ptbxl_resolution=ptbxl_resolution,
                            min_likelihood=min_likelihood, windows=windows, window_stride=window_stride,
                            lead_map=lead_map, max_amplitude=max_amplitude, labels=table,
                            patient_from_name=patient_from_name, progress=not quiet and console.is_terminal)
    print_summary(result)


ingest.interrupt_message = ("Interrupted: the partial store was removed and OUT was left as it was; run the same "
                            "command again to ingest from the start.")


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C, so the temporary store is removed and the worker pool shut down."""
    import signal
    import threading

    from ecgcl.cli.main import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_summary(result) -> None:
    """Counts, output shape and skip reasons as rich tables."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ecgcl.data.plan import AMPLITUDE_FLAG_MV

    manifest = result.manifest
    counts = manifest["counts"]
    table = Table(title=Text(f"Store {result.path}"), show_header=False)
    table.add_row("records found", str(counts["found"]))
    table.add_row("written", f"[green]{counts['written']}[/]")
    table.add_row("skipped", f"[red]{counts['skipped']}[/]" if counts["skipped"] else "0")
    table.add_row("labelled / unlabelled", f"{counts['labelled']} / {counts['unlabelled']}")
    table.add_row("patients", str(counts["patients"]))
    table.add_row("shape", f"{counts['rows']} x {len(manifest['leads'])} leads x {manifest['samples']} samples "
                           f"({manifest['fs']:g} Hz, {manifest['length']:g} s)")
    flagged = manifest["flagged"]["implausible_amplitude"]
    if flagged["count"]:
        example = flagged["records"][0]
        table.add_row("flagged amplitude", Text(f"{flagged['count']} record(s) above {AMPLITUDE_FLAG_MV:g} mV median peak-to-peak, "
                                                f"e.g. {example['record_id']} ({example['amplitude_mv']:g} mV): "
                                                "check the units (--max-amplitude skips them)", style="yellow"))
    table.add_row("filter", str(manifest["preprocessing"]["filter"] or "none"))
    table.add_row("hash", manifest["hash"])
    console = Console()
    for name, text in choice_lines(manifest):
        console.print(Text(f"{name}: {text}"), soft_wrap=True)
    console.print(table)
    if result.skipped:
        reasons = Table(title="Skipped records")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        reasons.add_column("example")
        for category, count in manifest["skip_reasons"].items():
            example = next(s for s in result.skipped if s.category == category)
            reasons.add_row(category, str(count), Text(f"{example.record_id}: {example.detail}"))
        console.print(reasons)
        console.print("Every skipped record is listed in manifest.json under 'skipped'.")
    for leftover in result.stale:
        console.print(Text(f"Removed {leftover}, left by an ingest that was killed."), soft_wrap=True)
    print_annotations(console, manifest)


def choice_lines(manifest: dict) -> list[tuple[str, str]]:
    """Rows saying what ingest chose for options left out, how many records differed, and the windows."""
    lines = []
    differ = manifest.get("differ", {})
    chosen = manifest.get("chosen", {})
    if "fs" in chosen:
        lines.append(("sampling rate", f"{chosen['fs']['value']:g} Hz, the most common of {chosen['fs']['probed']} "
                                       f"records probed; {differ.get('resampled', 0)} record(s) resampled"))
    if "length" in chosen:
        lines.append(("length", f"{chosen['length']['value']:g} s, the most common of {chosen['length']['probed']} "
                                f"records probed; {differ.get('longer', 0)} longer (cropped), "
                                f"{differ.get('shorter', 0)} shorter"))
    if manifest["preprocessing"].get("windows"):
        lines.append(("windows", f"{manifest['counts']['rows']} windows of {manifest['length']:g} s every "
                                 f"{manifest['preprocessing']['window_stride']:g} s from "
                                 f"{manifest['counts']['written']} records"))
    if manifest["counts"].get("padded_rows"):
        lines.append(("padded rows", f"{manifest['counts']['padded_rows']} (valid_samples gives the real length)"))
    return lines
