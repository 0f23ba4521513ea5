"""Guards on the layout: code imports `ecgcl...` only, and the CLI starts without importing torch."""

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL_IMPORT = re.compile(r"^\s*(from|import)\s+(core|plugins|cli)(\.|\s|$)", re.MULTILINE)


def test_no_imports_of_the_folder_names():
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("core", "plugins", "cli", "tests", "benchmarks", "examples")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if TOP_LEVEL_IMPORT.search(path.read_text())
    ]
    assert offenders == [], f"import ecgcl.* instead of the folder names in: {offenders}"


def test_cli_help_does_not_import_torch_pandas_or_numpy():
    """`ecgcl --help` stays fast: the heavy libraries load when a command runs, not when the CLI is imported."""
    code = ("import sys; from ecgcl.cli.main import cli; "
            "print([m for m in ('torch', 'pandas', 'numpy', 'matplotlib') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_package_folder_is_listed_in_pyproject():
    """A subpackage missing from pyproject's list works in the editable checkout but is absent from a wheel."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {folder: name for name, folder in project["package-dir"].items()}
    found = set()
    for folder, name in roots.items():
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO_ROOT / folder).parts
            if not any(part.startswith((".", "_")) or part in roots for part in parts):
                found.add(".".join((name, *parts)))
    assert sorted(found - set(project["packages"])) == []


def test_the_version_has_one_home():
    """`ecgcl.version` holds the version: pyproject reads it from there (no second copy to forget), the package face
    and `ecgcl --version` hand it on, and the installed metadata agrees."""
    import tomllib
    from importlib.metadata import version

    import ecgcl
    from ecgcl.version import __version__

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ecgcl.version.__version__"}
    assert ecgcl.__version__ is __version__ and version("ecgcl") == __version__
