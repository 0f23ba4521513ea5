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
def run_command(config_file, resume, overwrite, **params) -> None:
    """Pretrain, fine-tune and evaluate over K repeated patient-level splits, with baselines.

    Example: ecgcl run --aug permute+noise --encoder cnn_attn_lstm --data STORE --repeats 5
    """
    if resume:
        if overwrite:
            raise EcgclError("--resume and --overwrite contradict each other")
        saved = Path(params.get("out") or "results") / "config.json"
        if not saved.is_file():
            raise EcgclError(f"--resume: {saved} does not exist (nothing to resume)")
        config_file = config_file or str(saved)
    config = _resolve(config_file, params)
    from ecgcl.protocol.results import summary_tables
    from ecgcl.protocol.runner import run_protocol

    console = _console()
    with RichReporter(console) as reporter:
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
def pretrain_command(config_file, overwrite, **params) -> None:
    """Contrastive pretraining on every record of a store; writes OUT/pretrain.pt.

    Use `ecgcl run` for the protocol that keeps validation and test patients out of pretraining.
    """
    import numpy as np

    from ecgcl.engine.device import seed_everything
    from ecgcl.protocol.runner import prepare, run_pretraining

    config = _resolve(config_file, params)
    if config.pretrain_epochs < 1:
        raise EcgclError("--pretrain-epochs must be at least 1 for `ecgcl pretrain`")
    console = _console()
    out = Path(config.out)
    _discard_partial(out, overwrite)
    with RichReporter(console) as reporter:
        exp = prepare(config, reporter=reporter)
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
        seed_everything(config.seed)
        _, history = run_pretraining(exp, np.arange(len(exp.store)), out, config.seed, unit={})
    console.print(f"pretrained {config.encoder} for {len(history)} epochs (final loss {history[-1]['loss']:.4f}); "
                  f"checkpoint {out / 'pretrain.pt'}")


@click.command("finetune")
@_common_options
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Encoder checkpoint from `ecgcl pretrain` (omit to train from random initialisation).")
@click.option("--mode", type=click.Choice(["finetune", "linear"]), default="finetune", show_default=True,
              help="End to end, or a linear probe on the frozen encoder.")
@click.option("--label-fraction", "label_fraction", type=float, default=1.0, show_default=True,
              help="Fraction of the training patients whose labels are used.")
@click.option("--overwrite", is_flag=True, help="Start again instead of resuming an unfinished run in --out.")
def finetune_command(config_file, checkpoint, mode, label_fraction, overwrite, **params) -> None:
    """Fine-tune an encoder on one patient-level split; keep the best validation epoch; report test metrics."""
    from ecgcl.engine.checkpoint import check_encoder_matches, check_store_matches, load_checkpoint
    from ecgcl.engine.device import seed_everything
    from ecgcl.protocol.results import write_json
    from ecgcl.protocol.runner import prepare, run_finetuning
    from ecgcl.protocol.splits import check_both_classes, label_fraction_subset, split_patients

    encoder_state, meta = None, None
    if checkpoint:
        saved = load_checkpoint(checkpoint)
        if saved.get("kind") != "encoder":
            raise EcgclError(f"checkpoint {checkpoint} is a {saved.get('kind')!r} checkpoint; --checkpoint needs a "
                             "pretrained encoder (pretrain.pt)")
        meta = saved["meta"]
        if params.get("encoder"):
            check_encoder_matches(meta, params["encoder"], source=f"checkpoint {checkpoint}")
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
        split = split_patients(codes, key, targets.labelled, repeat=0, seed=config.seed,
                               val_fraction=config.val_fraction, test_fraction=config.test_fraction)
        check_both_classes(targets.y, split.parts(), repeat=1, task=config.task, class_names=targets.class_names)
        train = label_fraction_subset(split.train, codes, key, label_fraction, config.seed)
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
        method = ("pretrained_" if checkpoint else "random_") + mode if mode == "linear" else \
            ("pretrained_finetune" if checkpoint else "supervised")
        row = run_finetuning(exp, method=method, encoder_state=encoder_state, train_rows=train, val_rows=split.val,
                             test_rows=split.test, folder=out, seed=config.seed,
                             unit={"repeat": 0, "seed": config.seed, "label_fraction": label_fraction, "method": method})
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate_command(checkpoint, data, split_file, part, device, batch_size, as_json) -> None:
    """Metrics of a fine-tuned CHECKPOINT (a *.best.pt) on the labelled records of a store."""
    from ecgcl.engine.evaluate import evaluate_checkpoint

    record_ids = None
    if split_file:
        try:
            record_ids = json.loads(Path(split_file).read_text())[part]
        except (OSError, ValueError, KeyError) as error:
            raise EcgclError(f"--split-file {split_file}: cannot read part {part!r} ({error})") from error
    result = evaluate_checkpoint(checkpoint, data, device=device, batch_size=batch_size, record_ids=record_ids)
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
