"""Tasks as plugins: every registered task honours the contract; the generic tasks; the `--task` syntax."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgcl.tasks import parse_task, task_targets
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Task, TaskTargets
from ecgcl.manager import create_plugin_manager


@pytest.fixture(scope="module")
def registry():
    return create_plugin_manager(entry_points=False).registry


def metadata(labels, **columns) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({"record_id": [str(i) for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                         "labels": labels, **columns})


CINC = metadata(["AF", "AF;RBBB", "NSR", "NSR", "RBBB", "", "AF;NSR", "STach"],
                rhythm=["AF", "AF", "SR", "SR", "SR", None, "AF", "ST"], sex=["M", "F", "F", "M", "M", "F", "", "M"])


def test_every_registered_task_is_a_task_and_keeps_the_contract_on_the_sample(registry, sample_metadata):
    for component in registry.components("task"):
        if any(p.required for p in component.parameters):
            continue
        task = parse_task(component.name, registry)
        assert isinstance(task, Task) and task.name == component.name
        targets = task.targets(sample_metadata)
        assert isinstance(targets, TaskTargets) and len(targets.labelled) == len(sample_metadata)
        assert targets.labelled.any(), component.name
        targets.check()


@pytest.fixture(scope="module")
def sample_metadata():
    from ecgcl.data.sample import sample_store_path
    from ecgcl.data.store import open_store

    return open_store(sample_store_path()).metadata


def test_has_one_class_against_the_rest(registry):
    t = task_targets("has:AF", CINC, registry=registry)
    assert t.kind == "binary" and t.class_names == ("not AF", "AF")
    assert t.labelled.tolist() == [True, True, True, True, True, False, True, True]
    assert t.y[t.labelled].tolist() == [1, 1, 0, 0, 0, 1, 0]


def test_has_against_a_named_class(registry):
    t = task_targets("has:AF,vs=NSR", CINC, registry=registry)
    assert t.class_names == ("NSR", "AF")
    assert np.flatnonzero(t.labelled).tolist() == [0, 1, 2, 3, 6]
    assert t.y[t.labelled].tolist() == [1, 1, 0, 0, 1]
    assert task_targets("has:label=AF", CINC, registry=registry).y.tolist() == task_targets("has:AF", CINC, registry=registry).y.tolist()


def test_a_class_no_record_has_is_one_line_with_did_you_mean(registry):
    with pytest.raises(EcgclError, match=r"task 'has:AFIB': no record has class 'AFIB' \(did you mean 'AF'\?\).*AF \(3\)"):
        task_targets("has:AFIB", CINC, registry=registry)
    with pytest.raises(EcgclError, match="no record has class 'SR'.*did you mean 'NSR'"):
        task_targets("has:AF,vs=SR", CINC, registry=registry)


def test_unknown_task_and_option_get_did_you_mean(registry):
    with pytest.raises(EcgclError, match=r"unknown task 'hass' \(did you mean 'has'\?\)"):
        parse_task("hass:AF", registry)
    with pytest.raises(EcgclError, match=r"task 'labels' has no option 'mn'.*options: min"):
        parse_task("labels:mn=3", registry)
    with pytest.raises(EcgclError, match="needs option"):
        parse_task("has", registry)
    with pytest.raises(EcgclError, match="min must be a positive integer"):
        parse_task("labels:min=0", registry)


def test_class_names_stay_text(registry):
    codes = metadata(["164889003", "426783006", "164889003;59118001", "426783006"])
    t = task_targets("has:164889003", codes, registry=registry)
    assert t.class_names[1] == "164889003" and t.y.tolist() == [1, 0, 1, 0]


def test_labels_multilabel_over_frequent_classes(registry):
    t = task_targets("labels:min=3", CINC, registry=registry)
    assert t.kind == "multilabel" and t.class_names == ("AF", "NSR")
    assert t.labelled.sum() == 7 and t.y[4].tolist() == [0, 0]  # RBBB only: labelled, all negative
    with pytest.raises(EcgclError, match="lower min="):
        task_targets("labels:min=4", CINC, registry=registry)


def test_column_task_multiclass_and_binary(registry):
    t = task_targets("column:rhythm", CINC, registry=registry)
    assert t.kind == "multiclass" and t.class_names == ("AF", "SR", "ST")
    assert t.labelled.tolist() == [True] * 5 + [False] + [True] * 2
    assert t.y[t.labelled].tolist() == [0, 0, 1, 1, 1, 0, 2]
    assert t.num_outputs == 3 and t.stratify_key()[2] == 1
    dropped = task_targets("column:rhythm,min=2", CINC, registry=registry)
    assert dropped.kind == "binary" and dropped.class_names == ("AF", "SR") and not dropped.labelled[7]
    sex = task_targets("column:sex,positive=F", CINC, registry=registry)
    assert sex.class_names == ("M", "F") and sex.y[sex.labelled].tolist() == [0, 1, 1, 0, 0, 1, 0]
    with pytest.raises(EcgclError, match=r"no column 'rythm' \(did you mean 'rhythm'\?\)"):
        task_targets("column:rythm", CINC, registry=registry)
    with pytest.raises(EcgclError, match="has no value 'X'"):
        task_targets("column:sex,positive=X", CINC, registry=registry)


def test_ptbxl_tasks_on_another_store_say_what_to_use(registry):
    with pytest.raises(EcgclError, match="needs PTB-XL diagnostic superclass labels.*has:CLASS"):
        task_targets("normal_vs_abnormal", CINC, registry=registry)
    with pytest.raises(EcgclError, match="no column 'scp_codes'"):
        task_targets("rhythm", CINC, registry=registry)


def test_ptbxl_statement_tasks_on_the_sample(registry, sample_metadata):
    rhythm = task_targets("rhythm", sample_metadata, registry=registry)
    assert "SR" in rhythm.class_names and rhythm.kind == "multilabel"
    assert set(rhythm.class_names) <= {"SR", "AFIB", "STACH", "SARRH", "SBRAD", "PACE", "SVARR", "BIGU", "AFLT",
                                       "SVTAC", "PSVT", "TRIGU"}
    frequent = task_targets("statements:min=20", sample_metadata, registry=registry)
    assert all(frequent.y[:, i].sum() >= 20 for i in range(frequent.num_outputs))
    form = task_targets("form", sample_metadata, registry=registry)
    assert "SR" not in form.class_names


def test_the_superclass_tasks_are_unchanged(registry, sample_metadata):
    from ecgcl.tasks import label_sets

    sets = label_sets(sample_metadata)
    t = task_targets("normal_vs_abnormal", sample_metadata, registry=registry)
    assert t.labelled.tolist() == [bool(s) for s in sets]
    assert t.y.tolist() == [float(bool(s - {"NORM"})) for s in sets]
    mi = task_targets("mi_vs_normal", sample_metadata, registry=registry)
    assert mi.labelled.tolist() == [s == {"NORM"} or "MI" in s for s in sets]


def test_targets_that_break_the_contract_are_refused():
    with pytest.raises(ValueError, match="multiclass targets of labelled records must be in"):
        TaskTargets("x", np.array([0, 3]), np.array([True, True]), ("a", "b", "c"), "multiclass")
    with pytest.raises(ValueError, match="binary targets need 2 class names"):
        TaskTargets("x", np.zeros(2), np.ones(2, bool), ("a",), "binary")
    with pytest.raises(ValueError, match="shape"):
        TaskTargets("x", np.zeros((2, 2)), np.ones(2, bool), ("a", "b", "c"), "multilabel")


def test_pretraining_tolerates_an_unlabelled_store_but_not_a_misspelt_class(registry):
    unlabelled = metadata(["", "", ""])
    assert task_targets("has:AF", unlabelled, registry=registry, require_labels=False) is None
    assert task_targets("normal_vs_abnormal", unlabelled, registry=registry, require_labels=False) is None
    with pytest.raises(EcgclError, match="no record has class 'AFIB'"):
        task_targets("has:AFIB", CINC, registry=registry, require_labels=False)
