"""`ecgcl pretrain`, `ecgcl finetune`, `ecgcl evaluate` and `ecgcl run` (which composes them).

Every option can also come from a TOML config file (`--config run.toml`, keys named like the options);
an option given on the command line wins. torch is imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ecgcl.errors import EcgclError


def _common_options(func):
    """The options shared by pretrain, finetune and run (all default to None = 'take from config/defaults')."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or JSON) config file."),
        click.option("--data", help="Store folder; without it, the small PTB-XL sample shipped with ecgcl."),
        click.option("--task", help="Downstream task, e.g. normal_vs_abnormal, superclasses, mi_vs_normal."),
        click.option("--encoder", help="Registered encoder: cnn, cnn_lstm, cnn_attn_lstm, cnn_transformer ..."),
        click.option("--encoder-arg", "encoder_arg", multiple=True, metavar="KEY=VALUE",
                     help="Encoder option, repeatable (e.g. --encoder-arg width=32)."),
        click.option("--embed-dim", type=int, help="Encoder output size."),
        click.option("--aug", help="Augmentations for the two views, e.g. permute+noise or clocs:strategy=cmsc."),
        click.option("--loss", help="Contrastive loss: ntxent or clocs_patient."),
        click.option("--loss-arg", "loss_arg", multiple=True, metavar="KEY=VALUE", help="Loss option (temperature=0.1)."),
        click.option("--projection-dim", type=int, help="Projection head output size."),
        click.option("--input", "input_", type=click.Choice(["time", "fft"]),
                     help="Encoder input: time samples or FFT magnitude."),
        click.option("--pretrain-epochs", type=int, help="Contrastive pretraining epochs."),
        click.option("--finetune-epochs", type=int, help="Fine-tuning / linear-probe epochs."),
        click.option("--batch-size", type=int, help="Batch size."),
        click.option("--lr", type=float, help="Pretraining learning rate (AdamW)."),
        click.option("--finetune-lr", type=float, help="Fine-tuning learning rate (AdamW)."),
        click.option("--weight-decay", type=float, help="AdamW weight decay."),
        click.option("--dropout", type=float, help="Dropout before the classifier's linear layer."),
        click.option("--seed", type=int, help="Base seed; repeat k uses seed + k."),
        click.option("--val-fraction", type=float, help="Fraction of labelled patients for validation."),
        click.option("--test-fraction", type=float, help="Fraction of labelled patients for test."),
        click.option("--device", help="auto, cpu, cuda, cuda:1 or mps."),
        click.option("--out", type=click.Path(file_okay=False), help="Results folder."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _speed_options(func):
    """Options that change how fast training runs, not what it computes (see `ecgcl.engine.options`)."""
    options = [
        click.option("--bf16", is_flag=True, help="bfloat16 autocast for the encoder (GPU; also works on CPU)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the encoder and projection."),
        click.option("--workers", type=int, default=0, show_default=True,
                     help="DataLoader worker processes reading the store (0 = in the training process)."),
        click.option("--pin-memory", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
                     help="Pinned host memory with non-blocking copies (auto = on for CUDA)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _launcher_options(func):
    """Multi-process options of `ecgcl pretrain`: re-run the command through PyTorch's torchrun."""
    options = [
        click.option("--launcher", type=click.Choice(["none", "torchrun"]), default="none", show_default=True,
                     help="torchrun: start --nproc-per-node processes with `python -m torch.distributed.run`."),
        click.option("--nproc-per-node", type=int, default=1, show_default=True,
                     help="Processes per node with --launcher torchrun (one per GPU; any number on CPU)."),
        click.option("--nnodes", type=int, default=1, show_default=True, help="Number of nodes (torchrun)."),
        click.option("--rdzv-endpoint", metavar="HOST:PORT",
                     help="Rendezvous address shared by all nodes when --nnodes > 1 (torchrun's c10d rendezvous)."),
        click.option("--rdzv-id", default="ecgcl", show_default=True, help="Job id shared by all nodes (torchrun)."),
        click.option("--no-sync-bn", "no_sync_bn", is_flag=True,
                     help="Under multi-GPU DDP keep per-GPU BatchNorm statistics instead of SyncBatchNorm."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


LAUNCHER_PARAMS = ("launcher", "nproc_per_node", "nnodes", "rdzv_endpoint", "rdzv_id")


def _train_options(bf16: bool, compile_: bool, workers: int, pin_memory: str, *, sync_batchnorm: bool = True,
                   timer=None):
    from ecgcl.engine.options import TrainOptions

    pin = {"auto": None, "on": True, "off": False}[pin_memory]
    return TrainOptions(bf16=bf16, compile=compile_, workers=workers, pin_memory=pin,
                        sync_batchnorm=sync_batchnorm, timer=timer)


def _refuse_multiprocess(command: str) -> None:
    """`run` and `finetune` train in one process; under a multi-process torchrun every rank would redo them."""
    from ecgcl.distributed import env_world_size

    if env_world_size() > 1:
        raise EcgclError(f"`ecgcl {command}` runs in one process, but torchrun started {env_world_size()}; "
                         "use `ecgcl pretrain --launcher torchrun` for multi-process pretraining, then "
                         "`ecgcl finetune --checkpoint OUT/pretrain.pt`")


def _given_args(ctx: click.Context, skip: tuple[str, ...]) -> list[str]:
    """The options of this invocation that came from the command line (or environment), as arguments again."""
    from click.core import ParameterSource

    args: list[str] = []
    for param in ctx.command.params:
        if param.name in skip or not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(param.name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = ctx.params[param.name]
        if param.is_flag:
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
            continue
        for item in (value if param.multiple else (value,)):
            args += [param.opts[0], str(item)]
    return args


def _relaunch_with_torchrun(ctx: click.Context, config, *, nproc_per_node: int, nnodes: int,
                            rdzv_endpoint: str | None, rdzv_id: str) -> int:
    """Run this very command again under `python -m torch.distributed.run` (torchrun); returns its exit code.

    Checks what can be checked here first (process counts, the device, the batch split) so those mistakes are
    one line with exit code 2 instead of one failure per rank.
    """
    import subprocess
    import sys

    from ecgcl.distributed import launched_by_torchrun, resolve_device

    if launched_by_torchrun():
        raise EcgclError("--launcher torchrun given inside a process torchrun already started; drop --launcher")
    if nproc_per_node < 1:
        raise EcgclError(f"--nproc-per-node must be at least 1, got {nproc_per_node}")
    if nnodes < 1:
        raise EcgclError(f"--nnodes must be at least 1, got {nnodes}")
    if nnodes > 1 and not rdzv_endpoint:
        raise EcgclError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (the same on every node)")
    device = resolve_device(config.device, nproc_per_node - 1)  # the highest local rank must have its GPU too
    world = nproc_per_node * nnodes
    if config.batch_size % world:
        raise EcgclError(f"--batch-size {config.batch_size} must be divisible by the {world} processes "
                         f"(--nproc-per-node x --nnodes); it is the global batch")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc_per_node),
               "--nnodes", str(nnodes)]
    if nnodes == 1 and not rdzv_endpoint:
        command.append("--standalone")
    else:
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint, "--rdzv-id", rdzv_id]
    command += ["-m", "ecgcl.cli", ctx.info_name, *_given_args(ctx, LAUNCHER_PARAMS)]
    if device.type == "cpu":
        _console().print(f"[dim]torchrun: {world} processes, gloo on CPU[/dim]")
    return subprocess.call(command)


def _with_defaults(command: click.Command) -> click.Command:
    """Append each option's default (from `RunConfig`) to its help, since the options themselves default to None."""
    from ecgcl.config import RunConfig

    defaults = RunConfig().to_dict()
    for param in command.params:
        name = {"input_": "input", "encoder_arg": "encoder_args", "loss_arg": "loss_args"}.get(param.name, param.name)
        if isinstance(param, click.Option) and not param.show_default and not param.is_flag and name in defaults:
            value = defaults[name]
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            shown = " ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else shown
            if value is not None:
                param.help = f"{param.help}  [default: {shown}]"
    return command


def _resolve(config_file: str | None, params: dict[str, Any]):
    """Defaults < config file < command line, as a `RunConfig`."""
    from ecgcl.config import parse_key_values, read_config_file, resolve_config

    file_values = read_config_file(config_file) if config_file else {}
    overrides = {k: v for k, v in params.items() if k not in ("encoder_arg", "loss_arg", "input_")}
    overrides["input"] = params.get("input_")
    if params.get("encoder_arg"):
        overrides["encoder_args"] = {**file_values.get("encoder_args", {}),
                                     **parse_key_values(params["encoder_arg"], "--encoder-arg")}
    if params.get("loss_arg"):
        overrides["loss_args"] = {**file_values.get("loss_args", {}), **parse_key_values(params["loss_arg"], "--loss-arg")}
    return resolve_config(file_values, overrides)


def _check_options_match_checkpoint(meta: dict[str, Any], config_file: str | None, params: dict[str, Any], *,
                                    source: str) -> None:
    """`finetune --checkpoint` takes the model from the checkpoint: refuse a model option that contradicts it."""
    from ecgcl.config import parse_key_values, read_config_file
    from ecgcl.engine.checkpoint import check_encoder_matches

    given = read_config_file(config_file) if config_file else {}
    encoder = params.get("encoder") or given.get("encoder")
    if encoder:
        check_encoder_matches(meta, encoder, source=source)
    encoder_args = parse_key_values(params["encoder_arg"], "--encoder-arg") if params.get("encoder_arg") \
        else given.get("encoder_args", {})
    conflicts = [f"--encoder-arg {k}={v!r} (checkpoint: {meta['encoder_args'].get(k)!r})"
                 for k, v in encoder_args.items() if meta["encoder_args"].get(k) != v]
    for option, value, saved in (("--embed-dim", params.get("embed_dim") or given.get("embed_dim"), meta["embed_dim"]),
                                 ("--input", params.get("input_") or given.get("input"), meta["representation"])):
        if value is not None and value != saved:
            conflicts.append(f"{option} {value!r} (checkpoint: {saved!r})")
    if conflicts:
        raise EcgclError(f"{source} fixes the model; these options contradict it: {'; '.join(conflicts)}")


class RichReporter:
    """Shows each training stage as a rich progress bar with the latest loss / validation AUROC."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stage(self, description: str, epochs: int) -> None:
        self.task = self.progress.add_task(description, total=epochs, info="")

    def epoch(self, stage: str, epoch: int, epochs: int, record: dict[str, Any]) -> None:
        info = f"loss {record['loss']:.4f}"
        if record.get("val_auroc") is not None:
            info += f"  val AUROC {record['val_auroc']:.3f}"
        self.progress.update(self.task, completed=epoch, info=info)

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{text}[/dim]")


def _console():
    from ecgcl.cli.render import console

    return console


@click.command("run")
@_common_options
@click.option("--repeats", type=int, help="Number of repeated patient-level splits (K).")
@click.option("--label-fraction", "label_fractions", help="Comma-separated label fractions, e.g. 0.01,0.1,1.0.")
@click.option("--methods", help="Comma-separated: pretrained_finetune,pretrained_linear,random_linear,supervised.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (its saved config.json is the config).")
@click.option("--overwrite", is_flag=True, help="Discard earlier results in --out and start again.")
@_speed_options
def run_command(config_file, resume, overwrite, bf16, compile_, workers, pin_memory, **params) -> None:
    """Pretrain, fine-tune and evaluate over K repeated patient-level splits, with baselines.

    Example: ecgcl run --aug permute+noise --encoder cnn_attn_lstm --data STORE --repeats 5
    """
    _refuse_multiprocess("run")
    options = _train_options(bf16, compile_, workers, pin_memory)
    if resume:
        if overwrite:
            raise EcgclError("--resume and --overwrite contradict each other")
        saved = Path(params.get("out") or "results") / "config.json"
        if not saved.is_file():
            raise EcgclError(f"--resume: {saved} does not exist (nothing to resume)")
        config_file = config_file or str(saved)
    config = _resolve(config_file, params)
    from ecgcl.engine.options import training_options
    from ecgcl.protocol.results import summary_tables
    from ecgcl.protocol.runner import run_protocol

    console = _console()
    with RichReporter(console) as reporter, training_options(options):
        result = run_protocol(config, reporter=reporter, overwrite=overwrite)
    for table in summary_tables(result.summary):
        console.print(table)
    console.print("FT = fine-tuned end to end, LP = linear probe on the frozen encoder; "
                  "supervised = random init trained end to end.")
    console.print(f"Results in {result.out}/ (config.json, metrics.json/csv, summary.json/csv, loss_curves.png, "
                  f"label_efficiency.png, checkpoints under repeats/)")


def _discard_partial(out: Path, overwrite: bool) -> None:
    """With --overwrite, drop the resume states a previous invocation left in `out`."""
    if overwrite and out.is_dir():
        for stale in out.glob("*.last.pt"):
            stale.unlink()


@click.command("pretrain")
@_common_options
@click.option("--overwrite", is_flag=True, help="Start again instead of resuming an unfinished run in --out.")
@click.option("--all-records", is_flag=True,
              help="Pretrain on every record, even the validation/test patients `ecgcl finetune` (same --seed) "
                   "holds out; only for stores you will not evaluate on.")
@_speed_options
@_launcher_options
@click.pass_context
def pretrain_command(ctx, config_file, overwrite, all_records, bf16, compile_, workers, pin_memory, launcher, nproc_per_node,
                     nnodes, rdzv_endpoint, rdzv_id, no_sync_bn, **params) -> None:
    """Contrastive pretraining on a store; writes OUT/pretrain.pt.

    Records of the validation and test patients of the split that `ecgcl finetune` draws with the same --task,
    --seed, --val-fraction and --test-fraction are held out (a store without labels is used whole), so
    pretrain -> finetune never tests on a patient pretraining saw. `ecgcl run` does this for every repeat.
    Several processes: `--launcher torchrun --nproc-per-node N` (or `torchrun --nproc-per-node N -m ecgcl.cli
    pretrain ...`); --batch-size is then the global batch, and only rank 0 writes files.
    """
    from contextlib import nullcontext

    import numpy as np

    from ecgcl.distributed import barrier, distributed_session
    from ecgcl.engine.device import seed_everything
    from ecgcl.engine.options import StepTimer, training_options
    from ecgcl.protocol.runner import Reporter, finetune_split, prepare, run_pretraining
    from ecgcl.protocol.splits import pretraining_pool

    config = _resolve(config_file, params)
    if config.pretrain_epochs < 1:
        raise EcgclError("--pretrain-epochs must be at least 1 for `ecgcl pretrain`")
    timer = StepTimer(skip=1)  # the first step pays for warm-up (and torch.compile)
    options = _train_options(bf16, compile_, workers, pin_memory, sync_batchnorm=not no_sync_bn, timer=timer)
    if launcher == "torchrun":
        code = _relaunch_with_torchrun(ctx, config, nproc_per_node=nproc_per_node, nnodes=nnodes,
                                       rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id)
        ctx.exit(code)
    out = Path(config.out)
    with distributed_session(config.device) as session:
        if config.batch_size % session.world_size:
            raise EcgclError(f"--batch-size {config.batch_size} must be divisible by the {session.world_size} "
                             "processes; it is the global batch")
        console = _console() if session.is_main else None
        reporting = RichReporter(console) if session.is_main else nullcontext(Reporter())
        with reporting as reporter:
            exp = prepare(config, reporter=reporter, need_labels=False)
            exp.device = session.device
            pool = np.arange(len(exp.store)) if all_records or exp.targets is None else \
                pretraining_pool(exp.store.patient_codes, finetune_split(exp))
            if session.is_main:
                _discard_partial(out, overwrite)
                out.mkdir(parents=True, exist_ok=True)
                config.save(out)
            barrier()  # no rank looks for a resume file before rank 0 has discarded stale ones
            seed_everything(config.seed)
            with training_options(options):
                _, history = run_pretraining(exp, pool, out, config.seed, unit={})
            barrier()
        if session.is_main:
            ranks = f" on {session.world_size} processes ({session.backend})" if session.world_size > 1 else ""
            console.print(f"pretrained {config.encoder} for {len(history)} epochs{ranks} (final loss "
                          f"{history[-1]['loss']:.4f}); checkpoint {out / 'pretrain.pt'}")
            if timer.steps:
                console.print(f"throughput: {timer.summary()} on {session.device}")


@click.command("finetune")
@_common_options
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Encoder checkpoint from `ecgcl pretrain` (omit to train from random initialisation).")
@click.option("--mode", type=click.Choice(["finetune", "linear"]), default="finetune", show_default=True,
              help="End to end, or a linear probe on the frozen encoder.")
@click.option("--label-fraction", "label_fraction", type=float, default=1.0, show_default=True,
              help="Fraction of the training patients whose labels are used.")
@click.option("--overwrite", is_flag=True, help="Start again instead of resuming an unfinished run in --out.")
@_speed_options
def finetune_command(config_file, checkpoint, mode, label_fraction, overwrite, bf16, compile_, workers, pin_memory,
                     **params) -> None:
    """Fine-tune an encoder on one patient-level split; keep the best validation epoch; report test metrics."""
    from ecgcl.engine.options import training_options

    _refuse_multiprocess("finetune")
    options = _train_options(bf16, compile_, workers, pin_memory)
    from ecgcl.engine.checkpoint import check_store_matches, load_checkpoint
    from ecgcl.engine.device import seed_everything
    from ecgcl.protocol.results import write_json
    from ecgcl.protocol.runner import check_pretraining_excludes, finetune_split, prepare, run_finetuning
    from ecgcl.protocol.splits import check_both_classes, label_fraction_subset

    encoder_state, meta = None, None
    if checkpoint:
        saved = load_checkpoint(checkpoint)
        if saved.get("kind") != "encoder":
            raise EcgclError(f"checkpoint {checkpoint} is a {saved.get('kind')!r} checkpoint; --checkpoint needs a "
                             "pretrained encoder (pretrain.pt)")
        meta = saved["meta"]
        _check_options_match_checkpoint(meta, config_file, params, source=f"checkpoint {checkpoint}")
        params.update(encoder=meta["encoder"], embed_dim=meta["embed_dim"], input_=meta["representation"])
        params["encoder_arg"] = ()
        encoder_state = saved["encoder"]
    config = _resolve(config_file, params)
    if meta is not None:
        config.encoder_args = dict(meta["encoder_args"])
    console = _console()
    out = Path(config.out)
    _discard_partial(out, overwrite)
    with RichReporter(console) as reporter:
        exp = prepare(config, reporter=reporter)
        if meta is not None:
            check_store_matches(meta, exp.store, source=f"checkpoint {checkpoint}")
            exp.window = meta["window"]
        targets, codes = exp.targets, exp.store.patient_codes
        key = targets.stratify_key()
        seed_everything(config.seed)
        split = finetune_split(exp)
        if meta is not None:
            note = check_pretraining_excludes(meta, exp.store, split, source=f"checkpoint {checkpoint}")
            if note:
                console.print(f"[yellow]Note:[/] {note}")
        check_both_classes(targets.y, split.parts(), repeat=1, task=config.task, class_names=targets.class_names)
        train = label_fraction_subset(split.train, codes, key, label_fraction, config.seed)
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
        method = ("pretrained_" if checkpoint else "random_") + mode if mode == "linear" else \
            ("pretrained_finetune" if checkpoint else "supervised")
        with training_options(options):
            row = run_finetuning(exp, method=method, encoder_state=encoder_state, train_rows=train,
                                 val_rows=split.val, test_rows=split.test, folder=out, seed=config.seed,
                                 unit={"repeat": 0, "seed": config.seed, "label_fraction": label_fraction,
                                       "method": method})
    write_json(out / "metrics.json", row)
    _print_metrics(console, {k: v for k, v in row.items() if k != "history"}, f"{method}: test metrics")
    console.print(f"best checkpoint (epoch {row['best_epoch']}): {row['checkpoint']}")


@click.command("evaluate")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", required=True, help="Store folder to evaluate on (its labelled records).")
@click.option("--split-file", type=click.Path(dir_okay=False),
              help="A split.json from a run: evaluate only the records of --part.")
@click.option("--part", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--all-records", is_flag=True,
              help="Every labelled record, even on the training store (default there: the checkpoint's test records).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate_command(checkpoint, data, split_file, part, device, batch_size, all_records, as_json) -> None:
    """Metrics of a fine-tuned CHECKPOINT (a *.best.pt) on a store.

    On the store it was trained on: its own test records (or --split-file/--part, or --all-records); on
    another store: every record labelled for the checkpoint's task.
    """
    from ecgcl.engine.evaluate import evaluate_checkpoint

    record_ids = None
    if split_file:
        try:
            record_ids = json.loads(Path(split_file).read_text())[part]
        except (OSError, ValueError, KeyError) as error:
            raise EcgclError(f"--split-file {split_file}: cannot read part {part!r} ({error})") from error
    result = evaluate_checkpoint(checkpoint, data, device=device, batch_size=batch_size, record_ids=record_ids,
                                 all_records=all_records)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _print_metrics(_console(), result, f"{Path(checkpoint).name} on {data}")


def _print_metrics(console, result: dict[str, Any], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


COMMANDS = tuple(_with_defaults(c) for c in (pretrain_command, finetune_command, evaluate_command, run_command))
