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


def test_cli_help_does_not_import_torch():
    code = "import sys; from ecgcl.cli.main import cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
