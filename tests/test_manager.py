"""The plugin manager: built-ins, entry points one at a time, failures recorded, disable and strict."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from ecgcl import manager as manager_module
from ecgcl.errors import PluginLoadError
from ecgcl.manager import create_plugin_manager

GOOD = """
import ecgcl

def factory(strength: float = 1.0):
    '''A good component.'''
    return strength

@ecgcl.hookimpl
def register_augmentations(registry):
    registry.add("good_aug", factory, kind="augmentation")
"""
IMPORT_ERROR = "raise ImportError('missing dependency frobnicate')\n"
BAD_HOOK = """
import ecgcl

@ecgcl.hookimpl
def register_widgets(registry):
    pass
"""
BAD_ARGUMENT = """
import ecgcl

@ecgcl.hookimpl
def register_encoders(registry, colour):
    pass
"""
HALF_THEN_DUPLICATE = """
import ecgcl

def factory():
    return 1

@ecgcl.hookimpl
def register_augmentations(registry):
    registry.add("half_registered", factory, kind="augmentation")
    registry.add("good_aug", factory, kind="augmentation")
"""


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Write plugin modules to tmp_path and make them the `ecgcl` entry points."""

    def install(**modules: str) -> None:
        points = []
        for name, source in modules.items():
            (tmp_path / f"plugin_{name}.py").write_text(textwrap.dedent(source))
            points.append(EntryPoint(name=name, value=f"plugin_{name}", group="ecgcl"))
        monkeypatch.setattr(manager_module, "entry_points", lambda group: points if group == "ecgcl" else [])

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    for name in list(sys.modules):
        if name.startswith("plugin_"):
            del sys.modules[name]


def test_broken_plugins_are_recorded_and_the_rest_load(fake_entry_points):
    fake_entry_points(
        a_good=GOOD, b_import=IMPORT_ERROR, c_hook=BAD_HOOK, d_argument=BAD_ARGUMENT, e_duplicate=HALF_THEN_DUPLICATE
    )
    manager = create_plugin_manager()
    assert "good_aug" in manager.registry.names("augmentation")
    assert "half_registered" not in manager.registry.names("augmentation"), "a failed plugin leaves nothing behind"
    failures = {f.name: f.error for f in manager.failures}
    assert set(failures) == {"b_import", "c_hook", "d_argument", "e_duplicate"}
    assert "frobnicate" in failures["b_import"]
    assert "register_widgets" in failures["c_hook"]
    assert "colour" in failures["d_argument"]
    assert "good_aug" in failures["e_duplicate"]
    assert manager.registry.get("augmentation", "good_aug").source.name == "plugin_a_good"


def test_disable_plugins_skips_by_name(fake_entry_points, monkeypatch):
    fake_entry_points(a_good=GOOD, b_import=IMPORT_ERROR)
    monkeypatch.setenv("ECGCL_DISABLE_PLUGINS", "b_import, a_good")
    manager = create_plugin_manager()
    assert manager.failures == []
    assert "good_aug" not in manager.registry.names()


def test_strict_plugins_raise(fake_entry_points, monkeypatch):
    fake_entry_points(b_import=IMPORT_ERROR)
    monkeypatch.setenv("ECGCL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="b_import.*frobnicate"):
        create_plugin_manager()


def test_builtins_come_from_ecgcl():
    manager = create_plugin_manager(entry_points=False)
    from ecgcl import __version__

    assert all(c.source.name == "ecgcl" and c.source.version == __version__ for c in manager.registry)
    assert manager.failures == []


def test_fresh_managers_do_not_share_state():
    first, second = create_plugin_manager(entry_points=False), create_plugin_manager(entry_points=False)
    assert first.registry is not second.registry
