"""Split strategies: official PTB-XL folds on the shared PTB-XL metadata, fold columns, and bad --split values."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.tasks import task_targets
from ecgcl.errors import EcgclError
from ecgcl.protocol.splits import pretraining_pool
from ecgcl.protocol.strategies import draw_split
from ecgcl.split_spec import SPLIT_STRATEGIES, parse_split


@pytest.fixture(scope="module")
def ptbxl_metadata_store(ptbxl_dir, tmp_path_factory):
    """Every row of the shared PTB-XL database (real patients, labels and strat_fold) plus 30 records without a
    row, over placeholder signals: a split reads only the metadata."""
    database = pd.read_csv(ptbxl_dir / "ptbxl_database.csv")
    statements = pd.read_csv(ptbxl_dir / "scp_statements.csv", index_col=0)
    superclass = statements["diagnostic_class"].dropna().to_dict()
    labels = [";".join(sorted({superclass[c] for c in ast.literal_eval(codes) if c in superclass}))
              for codes in database["scp_codes"]]
    rows = pd.DataFrame({"record_id": database["ecg_id"].astype(str), "patient_id": database["patient_id"].astype(int).astype(str),
                         "labels": labels, "strat_fold": database["strat_fold"]})
    spare = pd.DataFrame({"record_id": [f"x{i}" for i in range(30)], "patient_id": [f"u{i}" for i in range(30)],
                          "labels": "", "strat_fold": pd.NA})
    metadata = pd.concat([rows, spare], ignore_index=True)
    signals = np.random.default_rng(0).normal(size=(len(metadata), 12, 8)).astype(np.float32)
    manifest = {"fs": 100.0, "length": 8, "leads": ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]}
    return write_store(tmp_path_factory.mktemp("folds") / "store", signals, metadata, manifest), database


@pytest.mark.parametrize("task", ["superclasses", "normal_vs_abnormal"])
def test_official_folds_are_exact_and_pretraining_excludes_folds_9_and_10(ptbxl_metadata_store, task):
    path, database = ptbxl_metadata_store
    store = open_store(path)
    targets = task_targets(task, store.metadata)
    strategy = parse_split("ptbxl-folds")
    assert strategy.fixed and "repeats vary only the training seed" in strategy.describe()
    splits = [draw_split(strategy, store, targets, repeat=r, seed=r, val_fraction=0.1, test_fraction=0.1)
              for r in range(2)]
    assert all(np.array_equal(splits[0].test, s.test) and np.array_equal(splits[0].train, s.train) for s in splits)
    split = splits[0]
    fold = dict(zip(database["ecg_id"].astype(str), database["strat_fold"]))
    ids = store.metadata["record_id"].astype(str).to_numpy()
    labelled = {i for i, used in zip(ids, targets.labelled) if used}
    assert {fold[i] for i in ids[split.val]} == {9} and {fold[i] for i in ids[split.test]} == {10}
    assert {fold[i] for i in ids[split.train]} == set(range(1, 9))
    # exact membership: every labelled record of a fold is in its part
    assert set(ids[split.test]) == {i for i in labelled if fold.get(i) == 10}
    assert set(ids[split.val]) == {i for i in labelled if fold.get(i) == 9}
    assert set(ids[split.train]) == {i for i in labelled if fold.get(i) in range(1, 9)}
    patients = store.metadata["patient_id"].astype(str).to_numpy()
    parts = [set(patients[p]) for p in (split.train, split.val, split.test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    pool = pretraining_pool(store.patient_codes, split)
    assert not {fold.get(i) for i in ids[pool]} & {9, 10}  # labelled or not, no record of folds 9 and 10
    assert not set(patients[pool]) & (parts[1] | parts[2])
    assert {f"x{i}" for i in range(30)} <= set(ids[pool])  # records without a fold still pretrain


def _store_with_column(tmp_path, column_values, patients):
    n = len(column_values)
    metadata = pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": patients,
                             "labels": ["NORM" if i % 2 else "MI" for i in range(n)], "site": column_values})
    signals = np.zeros((n, 12, 8), dtype=np.float32)
    return open_store(write_store(tmp_path / "s", signals, metadata, {"fs": 100.0, "length": 8}))


def test_any_fold_column_and_its_mistakes(tmp_path):
    folds = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5, ""]
    store = _store_with_column(tmp_path, folds, [f"p{i}" for i in range(12)])
    targets = task_targets("normal_vs_abnormal", store.metadata)
    split = draw_split(parse_split("column:site", [4], [5]), store, targets, repeat=0, seed=0, val_fraction=0.1,
                       test_fraction=0.1)
    assert list(split.val) == [6, 7] and list(split.test) == [8, 9, 10] and list(split.train) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(EcgclError, match=r"--test-folds: column 'site' .* no records in fold\(s\) \[7\]"):
        draw_split(parse_split("column:site", [4], [7]), store, targets, repeat=0, seed=0, val_fraction=0.1,
                   test_fraction=0.1)
    with pytest.raises(EcgclError, match="lacks"):
        draw_split(parse_split("column:centre", [4], [5]), store, targets, repeat=0, seed=0, val_fraction=0.1,
                   test_fraction=0.1)
    spread = _store_with_column(tmp_path / "b", folds, ["p0"] * 7 + [f"p{i}" for i in range(7, 12)])
    with pytest.raises(EcgclError, match="puts 1 patient\\(s\\) \\(e.g. 'p0'\\) in more than one"):
        draw_split(parse_split("column:site", [4], [5]), spread, targets, repeat=0, seed=0, val_fraction=0.1,
                   test_fraction=0.1)
    with pytest.raises(EcgclError, match="needs --val-folds and --test-folds"):
        parse_split("column:site")
    with pytest.raises(EcgclError, match="both --val-folds and --test-folds"):
        parse_split("column:site", [4], [4, 5])
    with pytest.raises(EcgclError, match="need --split ptbxl-folds or --split column:NAME"):
        parse_split("random", [9])
    with pytest.raises(EcgclError, match="did you mean 'ptbxl-folds'"):
        parse_split("ptbxl_folds")
    assert "column:NAME" in SPLIT_STRATEGIES


@pytest.mark.parametrize("args, message", [
    (["--split", "official"], "unknown --split 'official'"),
    (["--split", "column:site", "--val-folds", "9", "--test-folds", "10"], "column 'site', which store"),
    (["--split", "ptbxl-folds", "--val-folds", "9,x"], "--val-folds: cannot use"),
])
def test_bad_split_options_are_one_line_with_exit_2(tiny_store, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
