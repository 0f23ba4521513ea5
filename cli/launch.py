"""`--launcher torchrun`: run this very command again under `python -m torch.distributed.run`."""

from __future__ import annotations

import click
from click.core import ParameterSource

from ecgcl.errors import EcgclError

LAUNCHER_PARAMS = ("launcher", "nproc_per_node", "nnodes", "rdzv_endpoint", "rdzv_id")


def launcher_options(func):
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


def refuse_multiprocess(command: str) -> None:
    """`run` and `finetune` train in one process; under a multi-process torchrun every rank would redo them."""
    from ecgcl.distributed import env_world_size

    if env_world_size() > 1:
        raise EcgclError(f"`ecgcl {command}` runs in one process, but torchrun started {env_world_size()}; "
                         "use `ecgcl pretrain --launcher torchrun` for multi-process pretraining, then "
                         "`ecgcl finetune --checkpoint OUT/pretrain.pt`")


def given_args(ctx: click.Context, skip: tuple[str, ...]) -> list[str]:
    """The options of this invocation that came from the command line (or environment), as arguments again."""
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
        if isinstance(value, dict):  # a repeatable KEY=VALUE option
            value = tuple(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        for item in (value if param.multiple else (value,)):
            args += [param.opts[0], str(item)]
    return args


def relaunch_with_torchrun(ctx: click.Context, config, *, nproc_per_node: int, nnodes: int,
                           rdzv_endpoint: str | None, rdzv_id: str, console) -> int:
    """Run this very command again under `python -m torch.distributed.run` (torchrun); returns its exit code.

    Checks what can be checked here first (process counts, the device, the batch split) so those mistakes are
    one line with exit code 2 instead of one failure per rank.
    """
    import subprocess
    import sys

    from ecgcl.distributed import launched_by_torchrun
    from ecgcl.engine.guards import check_global_batch
    from ecgcl.engine.session import resolve_device

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
    check_global_batch(config.batch_size, world, " (--nproc-per-node x --nnodes)")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc_per_node),
               "--nnodes", str(nnodes)]
    if nnodes == 1 and not rdzv_endpoint:
        command.append("--standalone")
    else:
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint, "--rdzv-id", rdzv_id]
    command += ["-m", "ecgcl.cli", ctx.info_name, *given_args(ctx, LAUNCHER_PARAMS)]
    if device.type == "cpu":
        console.print(f"[dim]torchrun: {world} processes, gloo on CPU[/dim]")
    return subprocess.call(command)
