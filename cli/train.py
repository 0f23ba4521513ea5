"""`ecgcl pretrain`, `ecgcl finetune`, `ecgcl evaluate` and `ecgcl run`: parse options, call
`ecgcl.protocol`, show the results.

Every option can also come from a TOML config file (`--config run.toml`, keys named like the options; see
`ecgcl.cli.config_options`); an option given on the command line wins. torch is imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ecgcl.cli.launch import launcher_options, refuse_multiprocess, relaunch_with_torchrun
from ecgcl.cli.config_options import ConfigCommand, config_options, given_options, resume_options
from ecgcl.config import PRELOAD_MODES
from ecgcl.methods import FINETUNE_MODES
from ecgcl.protocol import SPLIT_PARTS


def _speed_options(func):
    """Options that change how fast training runs, not what it computes (see `ecgcl.engine.speed`)."""
    options = [
        click.option("--bf16", is_flag=True, help="bfloat16 autocast for the encoder (GPU; also works on CPU)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the encoder and projection."),
        click.option("--workers", type=int, default=0, show_default=True,
                     help="DataLoader worker processes reading the store (0 = in the training process)."),
        click.option("--pin-memory", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
                     help="Pinned host memory with non-blocking copies (auto = on for CUDA)."),
        click.option("--preload", type=click.Choice(PRELOAD_MODES), default="auto", show_default=True,
                     help="Hold the training records where training runs: device = on the GPU, ram = in host "
                          "memory, auto = device when they fit in half the free GPU memory, off = read the "
                          "memory-mapped store each batch."),
        click.option("--preload-budget", type=float, metavar="GB",
                     help="Memory (GB) --preload auto/ram may use instead of what is free."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _missing_leads_option(default_help: str):
    """`--missing-leads` of `finetune` and `evaluate` (see `ecgcl.engine.lead_mapping`)."""
    from ecgcl.config import MISSING_LEADS

    return click.option("--missing-leads", type=click.Choice(MISSING_LEADS),
                        help="When the store has only some of the checkpoint's leads (matched by name): zero = feed "
                             "the missing ones as zeros, slice = restrict the encoder's first layer to the present "
                             f"ones.  [default: {default_help}]")


def _train_options(params: dict[str, Any], *, sync_batchnorm: bool = True, timer=None):
    """The `TrainOptions` of the speed options (removed from `params`)."""
    from ecgcl.engine.speed import TrainOptions

    pin = {"auto": None, "on": True, "off": False}[params.pop("pin_memory")]
    return TrainOptions(bf16=params.pop("bf16"), compile=params.pop("compile_"), workers=params.pop("workers"),
                        pin_memory=pin, sync_batchnorm=sync_batchnorm, preload=params.pop("preload"),
                        preload_budget=params.pop("preload_budget"), timer=timer)


def _config(params: dict[str, Any]):
    from ecgcl.config import config_from_options

    return config_from_options(params)


def _console():
    from ecgcl.cli.render import console

    return console


def _progress(console):
    from ecgcl.cli.progress import training_progress

    return training_progress(console)


@click.command("run", cls=ConfigCommand)
@config_options("run")
@resume_options
@_speed_options
@click.pass_context
def run_command(ctx, resume: bool, overwrite: bool, config_file: str | None, **params) -> None:
    """Pretrain, fine-tune and evaluate over K repeated patient-level splits, with baselines.

    Example: ecgcl run --aug permute+noise --encoder cnn_attn_lstm --data STORE --repeats 5

    With --pretrained PATH (pretrain.pt, an exported folder or hf://ORG/NAME), nothing is pretrained: the
    pretrained methods start from that encoder in every repeat, and the model options come from it.
    """
    from ecgcl.engine.speed import training_options
    from ecgcl.cli.tables import grid_tables, summary_tables
    from ecgcl.protocol.sweep import run_grid
    from ecgcl.protocol.results import endings_caption, pretraining_caption
    from ecgcl.protocol.runner import run_protocol

    refuse_multiprocess("run")
    options = _train_options(params)
    config = _config(params)
    console = _console()
    with _progress(console) as reporter, training_options(options):
        runner = run_grid if config.is_grid else run_protocol  # --pretrained: the model options set must agree
        result = runner(config, reporter=reporter, overwrite=overwrite, given=given_options(ctx))
    if config.is_grid:
        for table in grid_tables(result.rows):
            console.print(table)
        console.print(result.split_note, markup=False, highlight=False)
        endings = endings_caption(result.unit_rows)
        if endings:
            console.print(endings, markup=False, highlight=False)
        console.print(f"Grid in {result.out}/ (grid.csv, grid.json, grid.png; each cell's full results under "
                      "cells/<objective>__<aug>__<encoder>/" + (", with its robustness.csv/json/png)" if config.robustness else ")"),
                      markup=False, highlight=False)
        return
    caption = "\n".join(filter(None, [result.recipe, result.split_note,
                                      pretraining_caption(result.chosen, result.collapses)]))
    for table in summary_tables(result.summary, result.rows, caption):
        console.print(table)
    console.print("FT = fine-tuned end to end, LP = linear probe on the frozen encoder; "
                  "supervised = random init trained end to end.")
    if result.robustness is not None:
        _print_robustness(console, {"summary": result.robustness, "skipped": result.robustness_skipped,
                                    "files": [str(result.out / f"robustness.{e}") for e in ("csv", "json", "png")]})
    console.print(f"Results in {result.out}/ (config.json, metrics.json/csv, summary.json/csv, history.jsonl, "
                  "training_curves.png, loss_curves.png, label_efficiency.png (a forest plot with one label fraction), "
                  "report.html (all of it on one page), checkpoints under repeats/)", markup=False)


@click.command("pretrain", cls=ConfigCommand)
@config_options("pretrain")
@resume_options
@click.option("--all-records", is_flag=True,
              help="Pretrain on every record, even the validation/test patients `ecgcl finetune` (same --seed) "
                   "holds out; only for stores you will not evaluate on.")
@_speed_options
@launcher_options
@click.pass_context
def pretrain_command(ctx, resume: bool, overwrite: bool, config_file: str | None, all_records: bool, launcher: str,
                     nproc_per_node: int, nnodes: int, rdzv_endpoint: str | None, rdzv_id: str, no_sync_bn: bool,
                     **params) -> None:
    """Self-supervised pretraining on a store with one --objective (contrastive by default; `ecgcl list-plugins`
    lists the others); writes OUT/pretrain.pt.

    Records of the validation and test patients of the split that `ecgcl finetune` draws with the same --task,
    --seed, --val-fraction and --test-fraction are held out (a store without labels is used whole), so
    pretrain -> finetune never tests on a patient pretraining saw. `ecgcl run` does this for every repeat.
    Several processes: `--launcher torchrun --nproc-per-node N` (or `torchrun --nproc-per-node N -m ecgcl.cli
    pretrain ...`); --batch-size is then the global batch, and only rank 0 writes files.
    """
    from ecgcl.engine.speed import StepTimer
    from ecgcl.protocol.single import check_pretrain_config, pretrain_once

    timer = StepTimer(skip=1)  # the first step pays for warm-up (and torch.compile)
    options = _train_options(params, sync_batchnorm=not no_sync_bn, timer=timer)
    config = _config(params)
    check_pretrain_config(config)
    console = _console()
    if launcher == "torchrun":
        ctx.exit(relaunch_with_torchrun(ctx, config, nproc_per_node=nproc_per_node, nnodes=nnodes,
                                        rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id, console=console))
    result = pretrain_once(config, all_records=all_records, overwrite=overwrite, options=options,
                           progress=lambda: _progress(console))
    if result.is_main:
        ranks = f" on {result.world_size} processes ({result.backend})" if result.world_size > 1 else ""
        console.print(f"pretrained {config.encoder} for {len(result.history)} epochs{ranks} (final loss "
                      f"{result.history[-1]['loss']:.4f}); checkpoint {result.checkpoint}", markup=False)
        from ecgcl.protocol.results import pretraining_caption

        caption = pretraining_caption({"pretrain": result.chosen} if result.chosen else {}, result.collapses)
        if caption:
            console.print(caption, markup=False, highlight=False)
        console.print(f"per-epoch figures: {result.checkpoint.parent / 'history.jsonl'}, "
                      f"{result.checkpoint.parent / 'training_curves.png'}", markup=False, highlight=False)
        if timer.steps:
            console.print(f"throughput: {timer.summary()} on {result.device}")
    if result.world_size > 1:
        # every file is written and the process group is gone; leave before interpreter teardown, where a gloo
        # rank occasionally aborted in C++ destructors ("terminate called without an active exception", 2 of
        # 4 CI runs) after a finished run
        _exit_now(0)


def _exit_now(code: int) -> None:
    """Flush and end the process without interpreter teardown (a finished torchrun rank)."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.command("finetune", cls=ConfigCommand)
@config_options("finetune")
@click.option("--checkpoint", type=click.Path(),
              help="Encoder checkpoint from `ecgcl pretrain` (omit to train from random initialisation).")
@click.option("--mode", type=click.Choice(FINETUNE_MODES), default="finetune", show_default=True,
              help="End to end, or a linear probe on the frozen encoder.")
@click.option("--label-fraction", "label_fraction", type=float, default=1.0, show_default=True,
              help="Fraction of the training patients whose labels are used.")
@_missing_leads_option("zero if the encoder was pretrained with a lead-masking augmentation (lead_mask), else slice")
@resume_options
@_speed_options
@click.pass_context
def finetune_command(ctx, resume: bool, overwrite: bool, config_file: str | None, checkpoint: str | None, mode: str,
                     label_fraction: float, missing_leads: str | None, **params) -> None:
    """Fine-tune an encoder on one patient-level split; keep the best validation epoch; report test metrics."""
    from ecgcl.cli.render import print_metrics
    from ecgcl.protocol.single import finetune_once

    refuse_multiprocess("finetune")
    options = _train_options(params)
    config = _config(params)
    config.require_single("finetune")
    console = _console()
    with _progress(console) as reporter:
        result = finetune_once(config, checkpoint=checkpoint, given=given_options(ctx), mode=mode,
                               label_fraction=label_fraction, overwrite=overwrite, options=options,
                               reporter=reporter, missing_leads=missing_leads)
    print_metrics(console, {k: v for k, v in result.row.items() if k != "history"}, f"{result.method}: test metrics")
    from ecgcl.protocol.results import UNDERTRAINED_HINT, undertrained
    from ecgcl.protocol.runner import ending_note

    console.print(f"{ending_note(result.row)}; best checkpoint: {result.row['checkpoint']}", markup=False)
    if undertrained(result.row):
        console.print(f"warning: the best epoch was the last one: {UNDERTRAINED_HINT}", markup=False)


@click.command("evaluate", cls=ConfigCommand)
@click.argument("checkpoint", type=click.Path())
@click.option("--data", required=True, help="Store folder to evaluate on (its labelled records).")
@click.option("--split-file", type=click.Path(dir_okay=False),
              help="A split.json from a run: evaluate only the records of --part.")
@click.option("--part", type=click.Choice(list(SPLIT_PARTS)), default="test", show_default=True)
@config_options("evaluate")
@click.option("--all-records", is_flag=True,
              help="Every labelled record, even on the training store (default there: the checkpoint's test records).")
@_missing_leads_option("the fine-tuned checkpoint's own choice; else zero after lead-masking pretraining, slice "
                       "otherwise")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the robustness perturbations.")
@click.option("--out", type=click.Path(file_okay=False), default="robustness", show_default=True,
              help="Folder for robustness.csv/json/png (with --robustness).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate_command(checkpoint: str, data: str, split_file: str | None, part: str, config_file: str | None,
                     device: str, batch_size: int, robustness: bool, robustness_extra: tuple[str, ...],
                     all_records: bool, missing_leads: str | None, seed: int, out: str, as_json: bool) -> None:
    """Metrics of a fine-tuned CHECKPOINT (a *.best.pt) on a store.

    On the store it was trained on: its own test records (or --split-file/--part, or --all-records); on
    another store: every record labelled for the checkpoint's task. The store may hold a subset of the
    checkpoint's leads, in any order (see --missing-leads). --robustness adds the robustness report.
    """
    from ecgcl.protocol.single import evaluate_once

    result = evaluate_once(checkpoint, data, split_file=split_file, part=part, device=device, batch_size=batch_size,
                           all_records=all_records, missing_leads=missing_leads, robustness=robustness,
                           robustness_extra=robustness_extra, seed=seed, out=out)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from ecgcl.cli.render import print_metrics

    console = _console()
    report = result.pop("robustness", None)
    print_metrics(console, result, f"{Path(checkpoint).name} on {data}")
    if report:
        _print_robustness(console, report)


def _print_robustness(console, report: dict[str, Any]) -> None:
    """The robustness table, the conditions the store could not have, and where the files are."""
    from ecgcl.cli.tables import robustness_table

    console.print(robustness_table(report["summary"]))
    for note in report["skipped"]:
        console.print(f"skipped: {note}", style="dim", markup=False)
    console.print(f"Robustness report: {', '.join(report['files'])}", markup=False)


@click.command("embed")
@click.argument("checkpoint", type=click.Path())
@click.option("--data", required=True, help="Store folder whose records are embedded (`sample`: the embedded one).")
@click.option("--out", "out_file", required=True, type=click.Path(),
              help="FILE.npy (embeddings; record ids in FILE.ids.csv) or FILE.parquet (ids, metadata, emb_0 ...).")
@click.option("--split-file", type=click.Path(dir_okay=False),
              help="A split.json from a run: embed only the records of --part.")
@click.option("--part", type=click.Choice(list(SPLIT_PARTS)), default="test", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 or mps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Also draw a 2-D map of the embeddings (UMAP where umap-learn is installed, else t-SNE) to "
                   "PATH (.png, .pdf or .svg).")
@click.option("--color-by", metavar="COLUMN",
              help="Metadata column that colours the --plot map (default: the labels; e.g. sex, site, age).")
@click.option("--map-method", type=click.Choice(["auto", "umap", "tsne"]), default="auto", show_default=True,
              help="How --plot reduces the embeddings to 2-D (auto = umap when umap-learn is installed, else tsne).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the --plot map (same seed, same map).")
def embed_command(checkpoint: str, data: str, out_file: str, split_file: str | None, part: str, device: str,
                  batch_size: int, overwrite: bool, plot: str | None, color_by: str | None, map_method: str,
                  seed: int) -> None:
    """Embeddings of every record of a store (or of a split part) from the encoder in CHECKPOINT.

    CHECKPOINT: pretrain.pt / pretrain.last.pt, or a fine-tuned *.best.pt (its encoder). The store must have the
    leads, length and sampling rate the checkpoint was trained on. --plot also draws them as a 2-D map.
    """
    from ecgcl.errors import EcgclError
    from ecgcl.protocol.splits import read_split_file

    if plot is None and (color_by is not None or map_method != "auto"):
        raise EcgclError(f"{'--color-by' if color_by is not None else '--map-method'} colours or shapes the map: "
                         "add --plot PATH")
    if data == "sample" and not Path(data).exists():
        from ecgcl.data.sample import sample_store_path

        data = str(sample_store_path())
    record_ids = read_split_file(split_file, part) if split_file else None
    options = dict(record_ids=record_ids, device=device, batch_size=batch_size, overwrite=overwrite,
                   record_source=f"--split-file {split_file} (part {part})")
    if plot is None:
        from ecgcl.engine.embeddings import embed_checkpoint

        result, drawn = embed_checkpoint(checkpoint, data, out_file, **options), None
    else:
        from ecgcl.protocol.embedding_map import embed_and_map

        result, drawn = embed_and_map(checkpoint, data, out_file, plot=plot, color_by=color_by, method=map_method,
                                      seed=seed, **options)
    where = f"{result['out']} + {result['ids']}" if result["ids"] else result["out"]
    _console().print(f"{result['records']} embeddings of size {result['embed_dim']} -> {where}", markup=False,
                     highlight=False)
    if drawn is not None:
        _console().print(f"map ({drawn.caption}) -> {drawn.path}", markup=False, highlight=False)


COMMANDS = (pretrain_command, finetune_command, evaluate_command, run_command, embed_command)
