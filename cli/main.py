"""The `ecgcl` command group. Subcommands live in their own modules and import torch only when run."""

from __future__ import annotations

import errno
import sys

import click

from ecgcl import __version__
from ecgcl.cli.signals import Terminated
from ecgcl.errors import EcgclError


DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS}  # never a bug
INTERRUPTED = ("Interrupted: finished epochs are saved; run the same command again (or `ecgcl run --resume "
               "--out DIR`) to continue.")


class EcgclGroup(click.Group):
    """A click group that turns `EcgclError` (a user mistake) and an `OSError` of a full or read-only disk that
    no writer named (a net: ecgcl's own writers raise `EcgclError`) into one line on stderr and exit code 2, and
    Ctrl-C (or SIGTERM) into one line and exit code 130 (143): the command's own `interrupt_message` if it
    has one, else the training one (work is saved per epoch, so a rerun resumes)."""

    plugins_added = False

    def add_plugin_commands(self) -> None:
        """Commands of installed plugins (`register_commands`), added the first time the full list is needed,
        so `ecgcl ingest ...` does not load every plugin just to run."""
        if not self.plugins_added:
            self.plugins_added = True
            from importlib.metadata import entry_points

            from ecgcl.manager import ENTRY_POINT_GROUP, get_plugin_manager

            if entry_points(group=ENTRY_POINT_GROUP):  # no third-party plugin: nothing to load
                get_plugin_manager().add_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self.add_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EcgclError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except OSError as error:
            if error.errno not in DISK_FULL:  # anything else may be a bug: its traceback is wanted
                raise
            # every ecgcl writer names its file and what it holds (ecgcl.files.write_error); this is the net
            # under a writer that does not (a plugin's, a library's)
            where = f" {error.filename}" if error.filename else ""
            hint = "write elsewhere" if error.errno == errno.EROFS else "free space and run the same command again"
            click.echo(f"Error: cannot write{where}: {error.strerror or error} ({hint})", err=True)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:
            command = self.commands.get(ctx.invoked_subcommand or "")
            message = getattr(command, "interrupt_message", None) or INTERRUPTED
            terminated = isinstance(interrupt, Terminated)
            click.echo(message.replace("Interrupted", "Terminated", 1) if terminated else message, err=True)
            sys.exit(143 if terminated else 130)


@click.group(cls=EcgclGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ecgcl")
def cli() -> None:
    """ecgcl: contrastive self-supervised pretraining of 12-lead ECGs."""


from ecgcl.cli.list_plugins import list_plugins  # noqa: E402  (commands register on `cli`)

cli.add_command(list_plugins)

from ecgcl.cli.ingest import ingest  # noqa: E402

cli.add_command(ingest)

from ecgcl.cli.relabel import relabel  # noqa: E402

cli.add_command(relabel)

from ecgcl.cli.export import export  # noqa: E402

cli.add_command(export)

from ecgcl.cli.train import COMMANDS as _TRAIN_COMMANDS  # noqa: E402

for _command in _TRAIN_COMMANDS:
    cli.add_command(_command)

from ecgcl.cli.tune import COMMANDS as _TUNE_COMMANDS  # noqa: E402

for _command in _TUNE_COMMANDS:
    cli.add_command(_command)

from ecgcl.cli.show import show as _show  # noqa: E402

cli.add_command(_show)

from ecgcl.cli.explain import explain as _explain  # noqa: E402

cli.add_command(_explain)

from ecgcl.cli.report import report as _report  # noqa: E402

cli.add_command(_report)
