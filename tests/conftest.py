"""Shared test fixtures: paths to the repository and to real PTB-XL records.

`ptbxl_dir` is the shared PTB-XL subset beside the repository (`../shared/data/ptbxl`, or the folder named by
`$ECGCL_SHARED_PTBXL`) where it is present, else the small real fixture `tests/data/ptbxl` (299 records, same
layout), so that a clone without `shared/` runs almost every test. Tests that need more records than the fixture
holds are marked `shared_data` and skip, with that reason, where only the fixture is there. The last line pytest
prints counts the skipped tests by reason.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_OVERRIDE = os.environ.get("ECGCL_SHARED_PTBXL")
SHARED_PTBXL_DIR = Path(_OVERRIDE) if _OVERRIDE else REPO_ROOT.parent / "shared" / "data" / "ptbxl"
FIXTURE_PTBXL_DIR = REPO_ROOT / "tests" / "data" / "ptbxl"
HAVE_SHARED_PTBXL = (SHARED_PTBXL_DIR / "ptbxl_database.csv").is_file()
PTBXL_DIR = SHARED_PTBXL_DIR if HAVE_SHARED_PTBXL else FIXTURE_PTBXL_DIR
NEEDS_SHARED = ("needs the larger shared PTB-XL subset (not found at "
                f"{SHARED_PTBXL_DIR if _OVERRIDE else '../shared/data/ptbxl'})")


def pytest_report_header(config: pytest.Config) -> str:
    where = "shared subset" if HAVE_SHARED_PTBXL else f"fixture (no shared subset at {SHARED_PTBXL_DIR})"
    return f"PTB-XL test records: {where} {PTBXL_DIR}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not HAVE_SHARED_PTBXL:
        for item in items:
            if item.get_closest_marker("shared_data"):
                item.add_marker(pytest.mark.skip(reason=NEEDS_SHARED))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """After pytest's own closing line (`N passed, M skipped in ...`), one line that says why the M skipped."""
    result = yield
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [r for r in reporter.stats.get("skipped", []) if getattr(r, "longrepr", None)] if reporter else []
    if skipped:
        reasons = Counter(_skip_reason(r) for r in skipped)
        parts = "; ".join(f"{n}: {reason}" for reason, n in reasons.most_common())
        reporter.write_line(f"{len(skipped)} skipped - {parts}", yellow=True)
    return result


@pytest.fixture(scope="session")
def ptbxl_dir() -> Path:
    """Real PTB-XL records in PTB-XL's layout: the shared subset where present, else the fixture tests/data/ptbxl."""
    if not (PTBXL_DIR / "ptbxl_database.csv").is_file():
        pytest.skip(f"no PTB-XL records: neither {SHARED_PTBXL_DIR} nor {FIXTURE_PTBXL_DIR}")
    return PTBXL_DIR


def _build_tiny_ptbxl_store(ptbxl: Path, out: Path, labelled: int = 60, unlabelled: int = 12) -> Path:
    """A tiny real store: `labelled` PTB-XL 100 Hz records with superclass labels plus `unlabelled` records
    that have no database row (each its own patient), written with `write_store`."""
    import ast

    import numpy as np
    import pandas as pd
    import wfdb

    from ecgcl.data.store import write_store

    database = pd.read_csv(ptbxl / "ptbxl_database.csv")
    statements = pd.read_csv(ptbxl / "scp_statements.csv", index_col=0)
    superclass = statements["diagnostic_class"].dropna().to_dict()
    database = database.sort_values("ecg_id").head(labelled)
    known = set(pd.read_csv(ptbxl / "ptbxl_database.csv")["ecg_id"])
    spare = [i for i in range(1000, 2000) if i not in known
             and (ptbxl / "records100" / "01000" / f"{i:05d}_lr.hea").is_file()][:unlabelled]
    rows, signals = [], []
    for row in database.itertuples():
        record = wfdb.rdrecord(str(ptbxl / row.filename_lr))
        codes = ast.literal_eval(row.scp_codes)
        labels = sorted({superclass[c] for c in codes if c in superclass})
        signals.append(record.p_signal.T.astype(np.float32))
        rows.append({"record_id": str(row.ecg_id), "patient_id": str(int(row.patient_id)), "labels": ";".join(labels),
                     "fs": 100.0, "original_fs": 100.0, "source_path": row.filename_lr, "strat_fold": row.strat_fold})
    for ecg_id in spare:
        record = wfdb.rdrecord(str(ptbxl / "records100" / "01000" / f"{ecg_id:05d}_lr"))
        signals.append(record.p_signal.T.astype(np.float32))
        rows.append({"record_id": str(ecg_id), "patient_id": f"u{ecg_id}", "labels": "", "fs": 100.0,
                     "original_fs": 100.0, "source_path": f"records100/01000/{ecg_id:05d}_lr", "strat_fold": ""})
    array = np.nan_to_num(np.stack(signals))
    manifest = {"source": str(ptbxl), "options": {"fs": 100, "normalise": None}, "fs": 100.0, "length": array.shape[2],
                "leads": ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]}
    return write_store(out, array, pd.DataFrame(rows), manifest)


@pytest.fixture(scope="session")
def tiny_store(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the first 60 labelled (55 with a superclass) + 12 unlabelled real PTB-XL 100 Hz records (built once per session)."""
    return _build_tiny_ptbxl_store(ptbxl_dir, tmp_path_factory.mktemp("stores") / "tiny")


# ---- real PTB-XL signals rewritten into other collections' layouts (units, lead names, rates, RECORDS ...) ----

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def digital(ptbxl: Path, ecg_id: int, hr: bool = False) -> np.ndarray:
    """The int16 (samples, 12) samples of a PTB-XL record (gain 1000 adu/mV, baseline 0 in every lead)."""
    folder, suffix = ("records500", "hr") if hr else ("records100", "lr")
    path = ptbxl / folder / f"{(ecg_id // 1000) * 1000:05d}" / f"{ecg_id:05d}_{suffix}.dat"
    return np.fromfile(path, dtype="<i2").reshape(-1, 12)


def write_record(folder: Path, name: str, samples: np.ndarray, *, fs: float = 100, names=LEADS, gain: float = 1000.0,
                 units: str | list[str] = "mV", signal_file: str | None = None, offset: int = 0,
                 comments: tuple[str, ...] = ()) -> Path:
    """A format-16 WFDB record from a (samples, leads) int16 array; returns the record stem."""
    folder.mkdir(parents=True, exist_ok=True)
    signal_file = signal_file or f"{name}.dat"
    units = [units] * len(names) if isinstance(units, str) else units
    with open(folder / signal_file, "wb") as handle:
        handle.write(b"\0" * offset)
        handle.write(samples.astype("<i2").tobytes())
    fmt = f"16+{offset}" if offset else "16"
    lines = [f"{name} {len(names)} {fs:g} {len(samples)}"]
    lines += [f"{signal_file} {fmt} {gain:g}(0)/{unit} 16 0 {int(samples[0, i])} 0 0 {lead}"
              for i, (lead, unit) in enumerate(zip(names, units))]
    lines += [f"#{c}" for c in comments]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / name


@pytest.fixture
def ecg_files():
    """`digital(ptbxl, ecg_id, hr)` and `write_record(folder, name, samples, ...)` for tests that rewrite records."""
    from types import SimpleNamespace

    return SimpleNamespace(digital=digital, write_record=write_record, LEADS=LEADS)


# ---- training that is interrupted and resumed -------------------------------------------------------------------

class Interrupted(Exception):
    """Raised from `on_epoch_end` to cut a training run short, as a kill after a finished epoch would."""


def _resume_equals_uninterrupted(run, tmp_path: Path):
    """`run(where, on_epoch_end)` trains for two or more epochs keeping its resume state under `where` and returns
    `(history, *modules)`. It is run whole, then interrupted after epoch 1 and run again into the same place; the
    resumed history and every module's state dict must equal the uninterrupted ones exactly. Returns both results."""
    import torch

    whole = run(tmp_path / "whole", None)

    def stop_after_first(stage, epoch, epochs, record):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        run(tmp_path / "cut", stop_after_first)
    resumed = run(tmp_path / "cut", None)
    assert resumed[0] == whole[0] and len(resumed[0]) >= 2
    for got, want in zip(resumed[1:], whole[1:]):
        expected = want.state_dict()
        assert got.state_dict().keys() == expected.keys()
        for key, value in got.state_dict().items():
            assert torch.equal(value, expected[key]), key
    return whole, resumed


@pytest.fixture
def resume_equals_uninterrupted():
    """The check of `_resume_equals_uninterrupted`, for tests of every loop that resumes."""
    return _resume_equals_uninterrupted


def _losses_over_steps(objective, view, batch, *, steps: int, lr: float) -> list[float]:
    """Train encoder (`view.module`) and objective with Adam for `steps` steps on one fixed batch, drawing the same
    views or masks each step, calling `after_step` as the loop does; each loss must be a finite scalar."""
    import torch

    parameters = [*view.module.parameters(), *(p for p in objective.parameters() if p.requires_grad)]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    losses = []
    for step in range(steps):
        loss = objective(view, batch, torch.arange(len(batch)), torch.Generator().manual_seed(0))
        assert loss.dim() == 0 and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        objective.after_step(step, steps)
        losses.append(loss.item())
    return losses


@pytest.fixture
def losses_over_steps():
    """`_losses_over_steps`, for the learning tests of every objective."""
    return _losses_over_steps


@pytest.fixture(scope="session")
def clinical():
    """`tests/clinical_files.py`: DICOM, MUSE XML, HL7 aECG, Philips XML and SCP-ECG files built from the real ECG
    that pydicom ships."""
    import importlib.util

    pytest.importorskip("pydicom")
    spec = importlib.util.spec_from_file_location("clinical_files", Path(__file__).with_name("clinical_files.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def alarm():
    """Fail a test that hangs instead of waiting forever (a FIFO opened for reading, an XML entity bomb)."""
    import signal

    def fail(signum, frame):
        raise TimeoutError("the test hung for 60 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
