"""Shared test fixtures: paths to the repository and the shared real PTB-XL subset."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PTBXL_DIR = REPO_ROOT.parent / "shared" / "data" / "ptbxl"


@pytest.fixture(scope="session")
def ptbxl_dir() -> Path:
    """The shared real PTB-XL subset; tests that need it skip with a reason where it is absent."""
    if not (PTBXL_DIR / "ptbxl_database.csv").is_file():
        pytest.skip(f"shared PTB-XL subset not found at {PTBXL_DIR}")
    return PTBXL_DIR
