"""`ecgcl show STORE --records ID,...`: draw records as the standard 12-lead sheet (PNG, PDF or SVG)."""

from __future__ import annotations

import click


@click.command("show")
@click.argument("store", type=click.Path(path_type=str))
@click.option("--records", default=None, help="Record ids to draw, separated by commas (e.g. 12,40).")
@click.option("--task", default=None, help="Draw records of one class of this task (as `ecgcl run --task` takes it).")
@click.option("--class", "class_name", default=None, help="The class of --task whose records are drawn.")
@click.option("--n", type=int, default=None, help="How many records of --class to draw, in store order [default: 4].")
@click.option("--random", "random_count", type=int, default=None, help="Draw this many records picked at random.")
@click.option("--seed", type=int, default=None,
              help="Seed of the --random draw; with --aug the pretraining run seed whose first batch is drawn "
                   "[default: 0].")
@click.option("--aug", default=None, help="Preview one record's views or masked input under this --aug spec "
                                          "(as `ecgcl pretrain` takes it; 'default': the objective's own).")
@click.option("--objective", default=None, help="With --aug: the pretraining objective [default: contrastive].")
@click.option("--epoch", type=int, default=1, show_default=True, help="With --aug: the epoch whose draws are shown.")
@click.option("--checkpoint", default=None, help="A masked objective's pretrain.last.pt: also draw its "
                                                 "reconstruction of the hidden patches.")
@click.option("--out", default="sheet.png", show_default=True,
              help="A .png, .svg or .pdf file (a PDF holds a page per record; otherwise one file per record, the "
                   "id added before the suffix), or a folder (one ID.png per record).")
@click.option("--dpi", type=int, default=150, show_default=True, help="Pixels per inch of a PNG.")
def show(store: str, records: str | None, task: str | None, class_name: str | None, n: int | None,
         random_count: int | None, seed: int | None, aug: str | None, objective: str | None, epoch: int,
         checkpoint: str | None, out: str, dpi: int) -> None:
    """Draw records of STORE (a store folder, or `sample` for the embedded one) as 12-lead sheets.

    Standard layout: three rows of four 2.5 s columns and a 10 s rhythm strip of lead II, at 25 mm/s and
    10 mm/mV on a millimetre grid; other lead sets draw one 10 s strip per lead. Choose records with exactly one
    of --records, --task/--class, --random.

    With --aug (or --objective, --checkpoint) one record is drawn with what the objective trains on, as
    pretraining draws it: the first batch of epoch --epoch of a run with --seed, when it holds this record.
    """
    from ecgcl.data.show import show as draw

    if aug is not None or objective is not None or checkpoint is not None:
        from ecgcl.errors import EcgclError
        from ecgcl.protocol.preview import preview

        if records is None or task or class_name or random_count is not None or n is not None:
            raise EcgclError("--aug previews one record: give it with --records ID (not --task or --random)")
        shown = preview(store, records, aug=None if aug == "default" else aug, objective=objective,
                        seed=0 if seed is None else seed, epoch=epoch, checkpoint=checkpoint,
                        out="preview.png" if out == "sheet.png" else out, dpi=dpi)
        click.echo(f"wrote {shown.path} (record {shown.record_id})")
        return
    sheets = draw(store, records=records, task=task, class_name=class_name, n=n, random=random_count, seed=seed,
                  out=out, dpi=dpi)
    for sheet in sheets:
        click.echo(f"wrote {sheet.path} (record {sheet.record_id})")
