"""`ecgcl relabel STORE --labels FILE ...`: new labels and patients for an existing store, signals untouched."""

from __future__ import annotations

import click

from ecgcl.cli.label_options import label_options, print_annotations, read_labels_option


@click.command("relabel")
@click.argument("store", type=click.Path(path_type=str))
@label_options
def relabel(store: str, labels: str | None, id_column: str | None, label_columns: str | None,
            patient_column: str | None, merge_labels: bool, patient_from_name: str | None) -> None:
    """Add or replace the labels and patients of STORE from a table and/or record names.

    The signals are not read again; the store is rewritten atomically (a failure leaves it as it was) and its
    manifest records the join (matched and unmatched rows and records) and a `relabelled` entry.
    """
    from rich.console import Console
    from rich.text import Text

    from ecgcl.data.relabel import relabel as run_relabel

    table = read_labels_option(labels, id_column, label_columns, patient_column, merge_labels)
    manifest = run_relabel(store, labels=table, patient_from_name=patient_from_name)
    console = Console()
    counts = manifest["counts"]
    console.print(Text(f"relabelled {store}: {counts['labelled']} labelled, {counts['unlabelled']} unlabelled "
                       f"records, {counts['patients']} patients; {manifest['dtype']} signals kept; "
                       f"hash {manifest['hash']}"), soft_wrap=True)
    print_annotations(console, manifest)
