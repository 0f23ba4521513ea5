"""Labels and patients from the data: `#Dx:` headers, a labels table, --patient-from-name, duplicates, relabel.

The WFDB collections are written inside the tests around real PTB-XL signals from ../shared/data.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store

AF, NSR, RBBB, CRBBB, UNKNOWN = "164889003", "426783006", "59118001", "713427006", "999999999"
TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--pretrain-epochs", "1",
        "--finetune-epochs", "1", "--device", "cpu"]
N_RECORDS = 40


def write_record(ptbxl, ecg_id: int, folder, name: str, comments: list[str]) -> None:
    """A WFDB record `folder/name` with the signal of PTB-XL record `ecg_id` (100 Hz) and the given comments."""
    source = ptbxl / "records100" / f"{ecg_id // 1000 * 1000:05d}" / f"{ecg_id:05d}_lr"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.with_suffix(".dat"), folder / f"{name}.dat")
    header = source.with_suffix(".hea").read_text().replace(f"{ecg_id:05d}_lr", name)
    (folder / f"{name}.hea").write_text(header.rstrip("\n") + "\n" + "".join(f"#{c}\n" for c in comments))


def dx_of(i: int) -> str:
    """Records 0, 3, 6 ... have AF (every fourth of them also RBBB, written as the complete-RBBB code)."""
    if i % 3 == 0:
        return f"{AF},{CRBBB}" if i % 4 == 0 else AF
    return NSR if i != 5 else f"{NSR},{UNKNOWN}"


@pytest.fixture(scope="module")
def cinc(ptbxl_dir, tmp_path_factory):
    """A CinC-style folder: 40 records in two subfolders with #Age/#Sex/#Dx (CinC and LUDB spellings), plus a
    byte-identical copy of record g0/A0002 under another name."""
    root = tmp_path_factory.mktemp("cinc") / "collection"
    for i in range(N_RECORDS):
        folder = root / f"g{i % 2}"
        age = [f"Age: {40 + i}", f"Sex: {'Male' if i % 2 else 'Female'}"] if i % 5 else [f"<age>: {40 + i} <sex>: M"]
        write_record(ptbxl_dir, i + 1, folder, f"A{i:04d}", [*age, f"Dx: {dx_of(i)}", "Rx: Unknown"])
    write_record(ptbxl_dir, 3, root / "copies", "B0001", ["Age: 41", f"Dx: {dx_of(2)}"])
    return root


def ingest_cli(*args):
    return CliRunner().invoke(cli, ["ingest", *map(str, args), "--workers", "1", "--quiet"])


def test_dx_headers_become_labels_with_abbreviations(cinc, tmp_path):
    result = ingest_cli(cinc, tmp_path / "store")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "store")
    rows = store.metadata.set_index("record_id")
    assert len(rows) == N_RECORDS + 1
    assert rows.loc["g0/A0000", "labels"] == "AF;RBBB"  # 713427006 (complete RBBB) is scored as RBBB
    assert rows.loc["g1/A0003", "labels"] == "AF" and rows.loc["g0/A0002", "labels"] == "NSR"
    assert rows.loc["g1/A0005", "labels"] == f"NSR;{UNKNOWN}"  # an unknown code is kept as the code
    assert str(rows.loc["g0/A0000", "dx"]) == f"{AF},{CRBBB}"
    assert rows.loc["g1/A0001", "age"] == 41 and rows.loc["g1/A0001", "sex"] == "M"
    assert rows.loc["g0/A0000", "age"] == 40 and rows.loc["g0/A0000", "sex"] == "M"  # <age>: 40 <sex>: M
    assert rows.loc["g0/A0002", "sex"] == "F"
    duplicates = store.manifest["duplicates"]
    assert duplicates["groups"] == 1 and duplicates["sets"] == [["copies/B0001", "g0/A0002"]]
    assert "byte-identical records: 2 records in 1 groups" in " ".join(result.output.split())


def _labels_table(path, *, suffix="csv"):
    """Labels and patients for every record but g1/A0039 (ids as paths, some with .hea), plus two stray rows."""
    rows = []
    for i in range(N_RECORDS - 1):
        record = f"g{i % 2}/A{i:04d}" + (".hea" if i % 7 == 0 else "")
        rows.append({"file": record, "rhythm": "AF" if i % 3 == 0 else "SR", "RBBB": int(i % 4 == 0),
                     "patient": f"P{i // 3}", "site": "north" if i < 20 else "south"})
    rows.append({"file": "copies/B0001", "rhythm": "SR", "RBBB": 0, "patient": "P100", "site": "north"})
    rows += [{"file": "g9/Z0001", "rhythm": "AF", "RBBB": 0, "patient": "P200", "site": "x"},
             {"file": "nope", "rhythm": "SR", "RBBB": 1, "patient": "P201", "site": "x"}]
    table = pd.DataFrame(rows)
    if suffix == "parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False, sep="\t" if suffix == "tsv" else ",")
    return path


def test_labels_table_joins_on_paths_and_patients_never_cross_a_split(cinc, tmp_path):
    table = _labels_table(tmp_path / "labels.tsv", suffix="tsv")
    store_path = tmp_path / "store"
    result = ingest_cli(cinc, store_path, "--labels", table, "--id-column", "file", "--label-columns", "rhythm,RBBB",
                        "--patient-column", "patient")
    assert result.exit_code == 0, result.output
    store = open_store(store_path)
    rows = store.metadata.set_index("record_id")
    assert rows.loc["g0/A0000", "labels"] == "AF;RBBB" and rows.loc["g0/A0002", "labels"] == "SR"
    assert rows.loc["g1/A0039", "labels"] == ""  # no row in the table: unlabelled, and listed
    assert rows.loc["g0/A0000", "patient_id"] == "P0" and rows.loc["g1/A0001", "patient_id"] == "P0"
    assert rows.loc["g0/A0004", "site"] == "north" and "rhythm" in rows.columns
    report = store.manifest["labels_table"]
    assert report["unmatched_rows"] == ["g9/Z0001", "nope"] and report["unmatched_records"] == ["g1/A0039"]
    assert report["matched_records"] == N_RECORDS and report["indicator_columns"] == ["RBBB"]
    assert store.manifest["counts"]["patients"] == 15
    out = tmp_path / "results"
    run = CliRunner().invoke(cli, ["run", "--data", str(store_path), "--task", "has:AF,vs=SR", "--out", str(out),
                                   "--repeats", "3", "--methods", "supervised", *TINY])
    assert run.exit_code == 0, run.output
    assert "test positives per class: SR" in " ".join(run.output.split())
    patient = dict(zip(store.metadata["record_id"], store.metadata["patient_id"]))
    for repeat in (1, 2, 3):
        split = json.loads((out / "repeats" / f"repeat_{repeat}" / "split.json").read_text())
        sides = [{patient[r] for r in split[part]} for part in ("train", "validation", "test")]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]), repeat
        # the byte-identical pair (patients P0 and P100) is on one side
        together = [i for i, part in enumerate(("train", "validation", "test"))
                    if {"copies/B0001", "g0/A0002"} & set(split[part])]
        assert len(together) == 1, (repeat, together)
        assert not {"copies/B0001", "g0/A0002"} & set(split["pretraining_pool"]) or together == [0]


def test_patient_from_name_and_relabel(cinc, tmp_path):
    store_path = tmp_path / "store"
    assert ingest_cli(cinc, store_path).exit_code == 0
    before = open_store(store_path)
    signals_before = np.asarray(before.signals).copy()
    result = CliRunner().invoke(cli, ["relabel", str(store_path), "--patient-from-name", r"A00(\d)\d"])
    assert result.exit_code == 0, result.output
    after = open_store(store_path)
    rows = after.metadata.set_index("record_id")
    assert rows.loc["g0/A0012", "patient_id"] == "1" and rows.loc["g1/A0019", "patient_id"] == "1"
    assert rows.loc["copies/B0001", "patient_id"] == "record:copies/B0001"  # no match: keeps its own
    assert after.manifest["patient_from_name"]["unmatched_records"] == ["copies/B0001"]
    assert after.manifest["counts"]["patients"] == 5 and after.hash != before.hash
    assert after.manifest["relabelled"][0]["previous_hash"] == before.hash
    np.testing.assert_array_equal(np.asarray(after.signals), signals_before)
    # the duplicate pair joins patient 0 (A0002) and B0001 into one split group
    groups = dict(zip(after.metadata["record_id"], after.group_codes))
    assert groups["copies/B0001"] == groups["g0/A0002"] == groups["g1/A0001"]
    assert groups["g0/A0010"] != groups["g0/A0002"]
    # relabel with a table (parquet) replaces labels; --merge-labels keeps the header ones too
    table = _labels_table(tmp_path / "labels.parquet", suffix="parquet")
    merged = CliRunner().invoke(cli, ["relabel", str(store_path), "--labels", str(table), "--id-column", "file",
                                      "--label-columns", "rhythm", "--merge-labels"])
    assert merged.exit_code == 0, merged.output
    rows = open_store(store_path).metadata.set_index("record_id")
    assert rows.loc["g0/A0002", "labels"] == "NSR;SR" and rows.loc["g1/A0039", "labels"] == "AF"
    assert rows.loc["g0/A0012", "patient_id"] == "1"  # no --patient-column: patients stay


def test_patient_from_name_at_ingest_cpsc_style(ptbxl_dir, tmp_path):
    source = tmp_path / "cpsc"
    for patient in (4, 12):
        for episode in range(3):
            write_record(ptbxl_dir, patient * 3 + episode + 1, source, f"data_{patient}_{episode}", [])
    result = ingest_cli(source, tmp_path / "store", "--patient-from-name", r"data_(\d+)_")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "store")
    assert sorted(set(store.metadata["patient_id"])) == ["12", "4"]
    assert store.manifest["counts"]["patients"] == 2


def _untouched(path, before):
    assert open_store(path).hash == before and not [p for p in path.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("args, message", [
    (["--id-column", "rec"], r"labels file .*labels.csv has no column 'rec' \(--id-column\); columns: file"),
    (["--id-column", "file", "--label-columns", "rythm"], r"has no column 'rythm' \(--label-columns\) \(did you mean 'rhythm'\?\)"),
    (["--id-column", "rhythm", "--label-columns", "rhythm"], "none of its 42 ids .*matches a record id or path"),
    (["--label-columns", "rhythm", "--patient-column", "pateint"], r"no column 'pateint' \(--patient-column\) \(did you mean 'patient'\?\)"),
])
def test_bad_labels_tables_are_one_line_and_change_nothing(cinc, tmp_path, args, message):
    table = _labels_table(tmp_path / "labels.csv")
    result = ingest_cli(cinc, tmp_path / "new", "--labels", table, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and re.search(message, result.output), result.output
    assert not (tmp_path / "new").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".new")]
    store_path = tmp_path / "store"
    assert ingest_cli(cinc, store_path).exit_code == 0
    before = open_store(store_path).hash
    again = CliRunner().invoke(cli, ["relabel", str(store_path), "--labels", str(table), *args])
    assert again.exit_code == 2 and again.output.count("\n") == 1, again.output
    _untouched(store_path, before)


def test_other_user_mistakes_exit_2(cinc, tmp_path):
    store_path = tmp_path / "store"
    assert ingest_cli(cinc, store_path).exit_code == 0
    before = open_store(store_path).hash
    cases = [(["relabel", str(store_path), "--patient-from-name", "data_(\\d+"], "not a valid regular expression"),
             (["relabel", str(store_path), "--patient-from-name", "zzz(\\d)"], "matches no record id"),
             (["relabel", str(store_path)], "needs --labels FILE and/or --patient-from-name"),
             (["relabel", str(store_path), "--id-column", "x"], "--id-column need(s) --labels FILE"),
             (["relabel", str(store_path), "--labels", str(tmp_path / "x.xlsx")], "expected a .csv, .tsv or .parquet"),
             (["run", "--data", str(store_path), "--task", "has:AFIB", "--out", str(tmp_path / "r")],
              "no record has class 'AFIB' (did you mean 'AF'?)"),
             (["run", "--data", str(store_path), "--task", "has:AF,vs=SR", "--out", str(tmp_path / "r")],
              "no record has class 'SR' (did you mean 'NSR'?)")]
    for args, message in cases:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and message in result.output and result.output.strip().count("\n") == 0, result.output
    _untouched(store_path, before)
    assert not (tmp_path / "r").exists()


def test_label_cells_with_one_class_per_line_are_split(ptbxl_dir, tmp_path):
    """A spreadsheet export's quoted cells list one finding per line (LF, CRLF or CR; the file itself CRLF):
    each line is a class, and the summary counts the cells that held several."""
    import csv

    from ecgcl.tasks import task_targets

    source = tmp_path / "exam"
    findings = {"E0": "Left atrial hypertrophy\nLeft ventricular hypertrophy",
                "E1": "Left ventricular hypertrophy\r\nSinus rhythm ",
                "E2": " Sinus rhythm\rLeft atrial hypertrophy\r\n",
                "E3": "Sinus rhythm",
                "E4": "Left ventricular hypertrophy; Sinus rhythm"}
    for i, name in enumerate(findings):
        write_record(ptbxl_dir, i + 1, source, name, [])
    table = tmp_path / "diagnoses.csv"
    with open(table, "w", newline="") as handle:  # csv's default line ending is \r\n, as Excel writes
        writer = csv.writer(handle)
        writer.writerow(["record", "diagnosis"])
        writer.writerows(findings.items())
    assert b'"Left atrial hypertrophy\nLeft ventricular hypertrophy"\r\n' in table.read_bytes()
    result = ingest_cli(source, tmp_path / "store", "--labels", table, "--label-columns", "diagnosis")
    assert result.exit_code == 0, result.output
    assert "labels table: 4 label cells listed several classes" in " ".join(result.output.split())
    store = open_store(tmp_path / "store")
    labels = store.metadata.set_index("record_id")["labels"].to_dict()
    assert labels == {"E0": "Left atrial hypertrophy;Left ventricular hypertrophy",
                      "E1": "Left ventricular hypertrophy;Sinus rhythm",
                      "E2": "Sinus rhythm;Left atrial hypertrophy", "E3": "Sinus rhythm",
                      "E4": "Left ventricular hypertrophy;Sinus rhythm"}
    assert store.manifest["labels_table"]["multi_class_cells"] == 4
    # the column is copied too, its CR line breaks as \n (a lone CR, unquoted by csv, would split a row)
    copied = store.metadata.set_index("record_id")["diagnosis"]
    assert copied["E2"] == "Sinus rhythm\nLeft atrial hypertrophy" and copied["E0"] == findings["E0"]
    targets = task_targets("has:Left ventricular hypertrophy", store.metadata)
    positive = dict(zip(store.metadata["record_id"], targets.y.tolist()))
    assert positive == {"E0": 1, "E1": 1, "E2": 0, "E3": 0, "E4": 1}
