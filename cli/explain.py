"""`ecgcl explain CHECKPOINT --data STORE --records ID,...`: attribution maps of a fine-tuned classifier, with the
sanity checks that say whether to trust them."""

from __future__ import annotations

import click


@click.command("explain")
@click.argument("checkpoint", type=click.Path(path_type=str))
@click.option("--data", required=True, help="The store of the records (a store folder, or `sample`).")
@click.option("--records", required=True, help="Record ids to explain, separated by commas (e.g. 12,40).")
@click.option("--out", default="explain", show_default=True, help="Folder for the figures and CSV files.")
@click.option("--class", "class_name", default=None,
              help="The class to explain [default: the class the model gives the highest probability].")
@click.option("--window", "window_s", type=float, default=0.5, show_default=True,
              help="Seconds per lead x time window (occlusion, CSV, deletion curve).")
@click.option("--steps", type=int, default=32, show_default=True, help="Integrated Gradients steps.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the randomised model and the random deletion orders.")
def explain(checkpoint: str, data: str, records: str, out: str, class_name: str | None, window_s: float,
            steps: int, seed: int) -> None:
    """Explain CHECKPOINT (a fine-tuned *.best.pt) on records of --data: Integrated Gradients (zero and
    low-passed baselines) and occlusion over lead x time windows, each drawn over the 12-lead sheet, with lead
    importance bars, a CSV of the values and the model-randomisation and deletion checks (needs the `explain`
    extra: pip install 'ecgcl[explain]')."""
    from ecgcl.protocol.explain import explain as run
    from ecgcl.reporting import Reporter

    class Warn(Reporter):
        def warning(self, text: str) -> None:
            click.echo(f"warning: {text}", err=True)

    results = run(checkpoint, data, records=records, out=out, class_name=class_name, window_s=window_s,
                  steps=steps, seed=seed, reporter=Warn())
    for result in results:
        verdict = "checks passed" if not result.warnings() else "CHECKS FAILED"
        click.echo(f"record {result.record_id}: p({result.class_name}) = {result.probability:.3f}, {verdict}")
        for method, check in result.checks.items():
            click.echo(f"  {method}: Spearman vs randomised model {check.rank_correlation:.2f}, deletion area "
                       f"top {check.top_area:.3f} / random {check.random_area:.3f}")
    click.echo(f"wrote {out}/attributions.csv, {out}/checks.csv and {sum(len(r.files) for r in results)} figures")
