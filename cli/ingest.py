"""`ecgcl ingest SOURCE OUT`: read records into a memory-mapped store and summarise what was skipped and why.

The options are generated from `ecgcl.data.ingest_options.IngestOptions`, where each is declared once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import Field, fields
from typing import Any

import click

from ecgcl.cli.label_options import LABEL_OPTION_FIELDS, label_options, print_annotations, read_labels_option
from ecgcl.cli.signals import sigterm_as_interrupt
from ecgcl.data.ingest_options import IngestOptions, option_flag


def ingest_click_option(f: Field) -> Callable:
    """The click option of one `IngestOptions` field: its flag, help, metavar, type (a flag for bools, choices,
    an IntRange for a minimum) and default (shown when it is not None)."""
    meta = f.metadata
    kwargs: dict[str, Any] = {"help": meta["help"]}
    if meta["metavar"]:
        kwargs["metavar"] = meta["metavar"]
    if meta["type"] is bool:
        kwargs["is_flag"] = True
    else:
        if meta["choices"]:
            kwargs["type"] = click.Choice(list(meta["choices"]))
        elif meta["minimum"] is not None:
            kwargs["type"] = click.IntRange(min=meta["minimum"])
        else:
            kwargs["type"] = meta["type"]
        if f.default is not None:
            kwargs.update(default=f.default, show_default=True)
    return click.option(option_flag(f.name), f.name, **kwargs)


def ingest_options(func: Callable) -> Callable:
    """Every `IngestOptions` field with an option of its own, in declaration order (the label-table options,
    shared with `ecgcl relabel`, come from `label_options`)."""
    declared = [f for f in fields(IngestOptions) if f.metadata["cli"] and f.name not in LABEL_OPTION_FIELDS]
    for f in reversed(declared):
        func = ingest_click_option(f)(func)
    return func


@click.command("ingest")
@click.argument("source", type=click.Path(path_type=str))
@click.argument("out", type=click.Path(path_type=str))
@ingest_options
@label_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(source: str, out: str, labels: str | None, id_column: str | None, label_columns: str | None,
           patient_column: str | None, merge_labels: bool, quiet: bool, **values: Any) -> None:
    """Ingest records from SOURCE into a store at OUT.

    SOURCE: a file or folder any reader recognises (`ecgcl list-plugins --kind reader`): PTB-XL, CODE-15,
    MIMIC-IV-ECG, WFDB folders (RECORDS honoured), record lists, .hea/.mat records, .npy/.npz, .parquet, and with
    `pip install 'ecgcl[formats]'` DICOM, GE MUSE XML, HL7 aECG, Philips XML, SCP-ECG and EDF. A folder may mix
    formats; files no reader recognises are counted and listed, never read.

    Bad records (missing or truncated signal files, corrupt headers, missing leads, unknown units, NaNs, gaps,
    flat leads, too short) are skipped, counted and listed in OUT/manifest.json. Labels come from WFDB `#Dx:`
    header lines (SNOMED-CT codes as abbreviations), the PTB-XL database, a clinical file's statements
    (--statements-as-labels), or a table given with --labels. Patient and record ids of clinical files are
    stored as keyed hashes (key in OUT.salt) unless --keep-patient-ids; the real paths of skipped and unrecognised
    clinical files are printed here and kept in OUT.files.csv (owner-only, beside the salt), never in the store.
    """
    from rich.console import Console

    from ecgcl.data.ingest import ingest as run_ingest
    from ecgcl.reporting import Reporter

    table = read_labels_option(labels, id_column, label_columns, patient_column, merge_labels)
    options = IngestOptions.from_values(labels=table, **values)
    console = Console(stderr=True)
    if not quiet:
        from ecgcl.cli.progress import ingest_progress

        shown = ingest_progress(console)
    else:
        shown = nullcontext(Reporter())
    with sigterm_as_interrupt(), shown as reporter:
        result = run_ingest(source, out, options, reporter=reporter)
    print_summary(result)


ingest.interrupt_message = ("Interrupted: the partial store was removed and OUT was left as it was; run the same "
                            "command again to ingest from the start.")


SHOWN_FILES = 20  # real paths of hidden files printed; OUT.files.csv has them all


def print_summary(result) -> None:
    """Counts, output shape and skip reasons as rich tables; files the store names by token by their real paths."""
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
                           f"({manifest['fs']:g} Hz, {manifest['length']:g} s, {manifest['dtype']}, "
                           f"{(result.path / 'signals.npy').stat().st_size / 1e6:.3g} MB)")
    flagged = manifest["flagged"]["implausible_amplitude"]
    if flagged["count"]:
        example = flagged["records"][0]
        table.add_row("flagged amplitude", Text(f"{flagged['count']} record(s) above {AMPLITUDE_FLAG_MV:g} mV median peak-to-peak, "
                                                f"e.g. {example['record_id']} ({example['amplitude_mv']:g} mV): "
                                                "check the units (--max-amplitude skips them)", style="yellow"))
    table.add_row("filter", str(manifest["preprocessing"]["filter"] or "none"))
    table.add_row("hash", manifest["hash"])
    console = Console()
    real = {file.token: file.relative_path for file in result.hidden_files}
    for name, text in choice_lines(manifest, real):
        console.print(Text(f"{name}: {text}"), soft_wrap=True)
    console.print(table)
    if result.skipped:
        reasons = Table(title="Skipped records")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        reasons.add_column("example")
        for category, count in manifest["skip_reasons"].items():
            example = next(s for s in result.skipped if s.category == category)
            reasons.add_row(category, str(count),
                            Text(f"{real.get(example.record_id, example.record_id)}: {example.detail}"))
        console.print(reasons)
        console.print("Every skipped record is listed in manifest.json under 'skipped'.")
    print_hidden_files(console, result)
    for leftover in result.stale:
        console.print(Text(f"Removed {leftover}, left by an ingest that was killed."), soft_wrap=True)
    print_annotations(console, manifest)


def print_hidden_files(console, result) -> None:
    """The real relative paths of the skipped and unrecognised files that the store names by token (they are in
    memory and in OUT.files.csv only), one a line so that a long path stays whole."""
    from rich.text import Text

    files = result.hidden_files
    if not files:
        return
    console.print(Text(f"Skipped and unrecognised clinical files, by their real paths (the store names them by "
                       f"token; {result.files_map} maps each token to its file, owner-only, never in the store):"),
                  soft_wrap=True)
    for file in files[:SHOWN_FILES]:
        console.print(Text(f"  {file.relative_path}  ({file.token})  {file.reason}"), soft_wrap=True)
    if len(files) > SHOWN_FILES:
        console.print(Text(f"  ... and {len(files) - SHOWN_FILES} more in {result.files_map}"), soft_wrap=True)


def skipped_links_line(links: list[dict], real: dict[str, str]) -> str:
    """`1 loop (sub/loop -> .), ...`: the links the folder walk skipped, by reason, with up to 3 examples each."""
    from ecgcl.data.folder_walk import DANGLING, LOOP, WALKED

    words = {LOOP: "loop(s) to a folder above, not followed", WALKED: "to a folder already walked, not followed "
             "again", DANGLING: "dangling (target missing), unreadable"}
    parts = []
    for reason, text in words.items():
        found = [f"{real.get(link['path'], link['path'])} -> {real.get(link['target'], link['target'])}"
                 for link in links if link["reason"] == reason]
        if found:
            parts.append(f"{len(found)} {text} ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})")
    return "; ".join(parts) + "; listed in manifest.json"


def choice_lines(manifest: dict, real: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Rows saying what ingest chose for options left out, how many records differed, and the windows; `real`
    maps tokens to the real paths they hide, shown in place of the tokens."""
    real = real or {}
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
    if "derived_leads" in manifest:
        lines.append(("derived leads", f"{manifest['derived_leads']['count']} record(s) stored without some limb "
                                       "leads; they were derived from I and II (derived_leads column)"))
    if "padding" in manifest:
        lines.append(("padding", f"{manifest['padding']['count']} record(s) with padding runs (cropped at the ends"
                                 "; gaps zero-filled under --pad)"))
    if "ignored_groups" in manifest:
        lines.append(("median beats", f"{manifest['ignored_groups']['count']} record(s) also hold median beats; "
                                      "only the rhythm waveform was read"))
    if "unrecognised_files" in manifest:
        files = manifest["unrecognised_files"]["files"]
        examples = ", ".join(real.get(name, name) for name in files[:3])
        lines.append(("unrecognised files", f"{len(files)} not read (e.g. {examples}); listed in manifest.json"))
    if "skipped_links" in manifest:
        lines.append(("skipped links", skipped_links_line(manifest["skipped_links"]["links"], real)))
    privacy = manifest.get("privacy")
    if privacy:
        lines.append(("patient privacy", f"ids of {privacy['identifying_records']} clinical record(s) "
                      + (f"hashed with the key in {privacy['key']}" if privacy["hashed"] else "kept as written")
                      + "; names and birth dates never read"))
    return lines
