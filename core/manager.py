"""The plugin manager: built-ins first, then every entry point of the group `ecgcl`, one at a time.

A third-party plugin that fails to import, carries a bad hook or registers a clashing name is recorded
as a `PluginFailure` and skipped (a plugin that calls `sys.exit` on import too); everything else keeps working.
`ECGCL_DISABLE_PLUGINS=a,b` skips plugins by entry-point or distribution name (`-`, `_`, `.` and case alike); `ECGCL_STRICT_PLUGINS=1` turns a failure into an error.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

import ecgcl.hookspecs as hookspecs
from ecgcl.errors import PluginLoadError
from ecgcl.registry import BUILTIN_MODULES, KIND_HOOKS, Registry, Source

ENTRY_POINT_GROUP = "ecgcl"
HOOK_NAMES = tuple(KIND_HOOKS.values())


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    version: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version, "error": self.error}


class PluginManager:
    """A pluggy manager plus the `Registry` its plugins filled and the plugins that failed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.failures: list[PluginFailure] = []
        self.sources: dict[str, Source] = {}
        self.strict = False

    def register(self, plugin: Any, name: str, source: Source) -> None:
        """Register one plugin and run its hooks; on any error undo what it did and re-raise."""
        self.pm.register(plugin, name=name)
        self.sources[name] = source
        try:
            self.pm.check_pending()
            self.registry.current_source = source
            for hook_name in HOOK_NAMES:
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(registry=self.registry)
        except BaseException:
            self.registry.remove_source(source.name)
            self.pm.unregister(plugin)
            self.sources.pop(name, None)
            raise
        finally:
            self.registry.current_source = Source("unknown", "")

    def load_builtins(self) -> None:
        """Register the plugins shipped inside ecgcl; a failure here is a bug and raises."""
        from ecgcl.version import __version__

        for module_name in BUILTIN_MODULES:
            source = Source("ecgcl", __version__, module_name)
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name == module_name:  # that built-in is not part of this version
                    continue
                raise
            self.register(module, module_name, source)

    def load_entry_points(self) -> None:
        """Load third-party plugins one by one, recording (or, when strict, raising) each failure."""
        disabled = {canonical_name(n) for n in os.environ.get("ECGCL_DISABLE_PLUGINS", "").split(",") if n.strip()}
        strict = self.strict = os.environ.get("ECGCL_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}
        for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            distribution, version = _distribution_of(entry_point)
            if canonical_name(entry_point.name) in disabled or canonical_name(distribution) in disabled:
                continue
            try:
                plugin = entry_point.load()
                self.register(plugin, f"{distribution}:{entry_point.name}",
                              Source(distribution, version, entry_point.name))
            except (Exception, SystemExit) as error:  # a broken plugin (even one calling sys.exit) never stops the rest
                failure = PluginFailure(entry_point.name, distribution, version, _describe(error))
                if strict:
                    raise PluginLoadError(
                        f"plugin {failure.name!r} ({distribution} {version}) failed to load: {failure.error}"
                    ) from error
                self.failures.append(failure)


    def add_commands(self, group: Any) -> None:
        """Let every plugin add its click commands to `group` (`register_commands`). A hook that fails, or that
        replaces a command already there, is undone and recorded as a failure (raised when strict)."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or ""
            source = self.sources.get(name, Source(name, ""))
            before = dict(group.commands)
            try:
                impl.function(cli=group)
                replaced = sorted(n for n, command in before.items() if group.commands.get(n) is not command)
                if replaced:
                    raise PluginLoadError(f"command(s) {', '.join(replaced)} already exist")
            except (Exception, SystemExit) as error:
                group.commands.clear()
                group.commands.update(before)
                failure = PluginFailure(source.plugin or name, source.name, source.version,
                                        "register_commands: " + _describe(error))
                if self.strict:
                    raise PluginLoadError(f"plugin {failure.name!r} ({failure.distribution}) failed to add its "
                                          f"commands: {failure.error}") from error
                self.failures.append(failure)


def canonical_name(name: str) -> str:
    """A plugin or distribution name as PEP 503 compares them: `Bad_Exit`, `bad.exit` and `bad-exit` are one."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit: the plugin called sys.exit({error.code!r}) while loading"
    return f"{type(error).__name__}: {error}"


def _distribution_of(entry_point: EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return entry_point.value.split(":")[0].split(".")[0], ""
    return dist.metadata["Name"], dist.version


def create_plugin_manager(*, entry_points: bool = True) -> PluginManager:
    """A fresh manager with the built-ins and (unless told not to) the installed third-party plugins."""
    manager = PluginManager()
    manager.load_builtins()
    if entry_points:
        manager.load_entry_points()
    return manager


@lru_cache(maxsize=1)
def get_plugin_manager() -> PluginManager:
    """The process-wide manager the CLI uses; tests build their own with `create_plugin_manager`."""
    return create_plugin_manager()


def get_registry() -> Registry:
    return get_plugin_manager().registry


__all__ = ["PluginFailure", "PluginManager", "create_plugin_manager", "get_plugin_manager", "get_registry"]
