"""The labels/patients options shared by `ecgcl ingest` and `ecgcl relabel`, and how their outcome is shown."""

from __future__ import annotations

import click

from ecgcl.data.ingest_options import declaration, option_flag

LABEL_OPTION_FIELDS = ("patient_from_name",)  # the `IngestOptions` fields declared here, not by `ecgcl ingest`


def _declared(name: str):
    """The click option of an `IngestOptions` string field (flag, metavar and help as declared there)."""
    meta = declaration(name)
    return click.option(option_flag(name), name, metavar=meta["metavar"], help=meta["help"])


def label_options(func):
    """--labels, --id-column, --label-columns, --patient-column, --merge-labels, --patient-from-name (declared
    in `IngestOptions`, whose `patient_from_name` it sets)."""
    options = [
        click.option("--labels", "labels", metavar="FILE",
                     help="A .csv/.tsv/.parquet table of labels and/or patients, one row per record."),
        click.option("--id-column", help="Column of --labels holding record ids or relative paths "
                                         "(default: record_id, record, id, ecg_id, filename, file or path)."),
        click.option("--label-columns", metavar="COL[,COL...]",
                     help="Columns of --labels with class names (cells may list several, split on , ; or line "
                          "breaks) or 0/1 indicator columns named after their class (default: a 'labels' column)."),
        click.option("--patient-column", help="Column of --labels with patient ids (keeps a patient's records "
                                              "on one side of every split)."),
        click.option("--merge-labels", is_flag=True,
                     help="Add the table's labels to the labels a record already has instead of replacing them."),
        _declared("patient_from_name"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def read_labels_option(path: str | None, id_column: str | None, label_columns: str | None,
                       patient_column: str | None, merge: bool):
    """The checked labels table, or None; table options without --labels are a usage mistake."""
    from ecgcl.data.label_table import read_label_table
    from ecgcl.errors import EcgclError

    if path is None:
        given = [name for name, value in (("--id-column", id_column), ("--label-columns", label_columns),
                                          ("--patient-column", patient_column), ("--merge-labels", merge)) if value]
        if given:
            raise EcgclError(f"{', '.join(given)} need(s) --labels FILE")
        return None
    return read_label_table(path, id_column=id_column, label_columns=label_columns or (),
                            patient_column=patient_column, merge=merge)


def print_annotations(console, manifest: dict) -> None:
    """One line each for the labels table join, --patient-from-name and byte-identical records."""
    from rich.text import Text

    lines = []
    table = manifest.get("labels_table")
    if table:
        lines.append(f"labels table: {table['matched_records']} records matched by {table['matched_rows']} of "
                     f"{table['rows']} rows; {len(table['unmatched_rows'])} rows match no record, "
                     f"{len(table['unmatched_records'])} records have no row (listed in manifest.json)")
        if table.get("multi_class_cells"):
            lines.append(f"labels table: {table['multi_class_cells']} label cells listed several classes (split on "
                         "commas, semicolons and line breaks)")
    named = manifest.get("patient_from_name")
    if named:
        lines.append(f"patients from names: {named['matched_records']} records matched {named['pattern']}; "
                     f"{len(named['unmatched_records'])} did not (they keep their own patient)")
    duplicates = manifest.get("duplicates")
    if duplicates and duplicates["groups"]:
        example = ", ".join(duplicates["sets"][0][:3])
        lines.append(f"byte-identical records: {duplicates['records']} records in {duplicates['groups']} groups "
                     f"(e.g. {example}); each group stays on one side of every split")
    for line in lines:
        console.print(Text(line), soft_wrap=True)
