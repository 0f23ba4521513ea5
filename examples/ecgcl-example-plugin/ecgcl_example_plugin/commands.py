"""A command a plugin adds to `ecgcl` (`register_commands`): `ecgcl store-summary STORE`.

It prints, per label, how many records and patients a store holds: the first thing to check before choosing
a task. It reads the store through ecgcl's own `open_store`, so it works on any store ecgcl writes.
"""

from __future__ import annotations

import click


@click.command("store-summary")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
def store_summary(store: str) -> None:
    """Records and patients per label of STORE (added by ecgcl-example-plugin)."""
    from ecgcl.data.store import open_store
    from ecgcl.tasks import label_sets

    metadata = open_store(store).metadata
    first = metadata[metadata["window"] == 0]
    patients: dict[str, set] = {}
    records: dict[str, int] = {}
    for patient, names in zip(first["patient_id"], label_sets(first)):
        for name in sorted(names) or ["(unlabelled)"]:
            patients.setdefault(name, set()).add(patient)
            records[name] = records.get(name, 0) + 1
    click.echo(f"{len(first)} records, {first['patient_id'].nunique()} patients")
    for name in sorted(records):
        click.echo(f"{name}\t{records[name]} records\t{len(patients[name])} patients")
