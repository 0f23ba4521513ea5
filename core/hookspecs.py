"""The pluggy hook specifications of ecgcl: plugins implement these with `@ecgcl.hookimpl`.

Hookspecs only ever gain arguments, so plugins written today keep working.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "ecgcl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_augmentations(registry):
    """Add augmentations with `registry.add(name, factory, kind="augmentation")`."""


@hookspec
def register_encoders(registry):
    """Add encoders with `registry.add(name, factory, kind="encoder")`."""


@hookspec
def register_losses(registry):
    """Add contrastive losses with `registry.add(name, factory, kind="loss")`."""


@hookspec
def register_objectives(registry):
    """Add pretraining objectives with `registry.add(name, factory, kind="objective")`; a factory returns an
    `ecgcl.interfaces.Objective`. Called once per plugin manager, after the other component hooks."""


@hookspec
def register_tasks(registry):
    """Add downstream tasks with `registry.add(name, factory, kind="task")`; a factory returns an `ecgcl.interfaces.Task`."""


@hookspec
def register_readers(registry):
    """Add readers of file formats or folder layouts with `registry.add(name, factory, kind="reader")`; a
    factory is an `ecgcl.data.records.Reader` subclass (its class attributes say what it recognises)."""


@hookspec
def register_monitors(registry):
    """Add pretraining monitors with `registry.add(name, factory, kind="monitor")`; a factory returns an
    `ecgcl.interfaces.Monitor` (options from `--monitor NAME:k=v`)."""


@hookspec
def register_trackers(registry):
    """Add experiment trackers with `registry.add(name, factory, kind="tracker")`; a factory returns an
    `ecgcl.interfaces.Tracker` (options from `--track NAME:k=v`)."""


@hookspec
def register_commands(cli):
    """Add click commands to the `ecgcl` command group with `cli.add_command(command)`. Called when the CLI
    first needs the full list of commands (help, or a name that is not built in); a plugin whose hook fails is
    listed by `ecgcl list-plugins` like any failed plugin."""
