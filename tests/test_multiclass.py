"""Multi-class targets end to end: metrics by hand, softmax classifier, per-class results, table caption."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.metrics import classification_metrics, per_class_metrics
from ecgcl.protocol.results import counts_caption

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]


def test_multiclass_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([[0.7, 0.2, 0.1],   # 0 -> 0
                  [0.3, 0.4, 0.3],   # 0 -> 1
                  [0.2, 0.6, 0.2],   # 1 -> 1
                  [0.1, 0.3, 0.6],   # 1 -> 2
                  [0.1, 0.1, 0.8],   # 2 -> 2
                  [0.5, 0.2, 0.3]])  # 2 -> 0
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(3 / 6)
    # every class: one of two right (recall 1/2) and one false positive (precision 1/2)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5) and m["f1"] == pytest.approx(0.5)
    # one-vs-rest AUROC per class, counted pair by pair (positive scored above negative; ties count 1/2)
    # class 0: positives .7,.3 vs negatives .2,.1,.1,.5 -> .7 beats 4, .3 beats 3 -> 7/8
    # class 1: positives .6,.3 vs .2,.4,.1,.2 -> .6 beats 4, .3 beats 3 -> 7/8
    # class 2: positives .8,.3 vs .1,.3,.2,.6 -> .8 beats 4, .3 beats 2 and ties 1 -> 6.5/8
    assert m["auroc"] == pytest.approx((7 / 8 + 7 / 8 + 6.5 / 8) / 3)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    # average precision of class 0: ranking .7(+) .5 .3(+) ... -> precision 1 at recall .5, 2/3 at recall 1
    per = per_class_metrics(y, p, ("a", "b", "c"))
    assert per["a"]["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert per["a"]["auroc"] == pytest.approx(7 / 8) and per["c"]["auroc"] == pytest.approx(6.5 / 8)
    assert {c: v["positives"] for c, v in per.items()} == {"a": 2, "b": 2, "c": 2}
    assert per["b"]["precision"] == pytest.approx(0.5) and per["b"]["recall"] == pytest.approx(0.5)


def test_a_class_missing_from_test_is_left_out_of_the_macro_auroc():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    m = classification_metrics(y, p)
    assert m["auroc"] == pytest.approx(1.0)
    assert math.isnan(per_class_metrics(y, p, "abc")["c"]["auroc"])


def test_binary_per_class_reports_both_classes():
    per = per_class_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), ("normal", "abnormal"))
    assert per["abnormal"]["positives"] == 2 and per["normal"]["positives"] == 2
    assert per["abnormal"]["auroc"] == pytest.approx(0.75) and per["normal"]["auroc"] == pytest.approx(0.75)


def test_caption_counts_and_warns_under_ten_positives():
    rows = [{"repeat": r, "test_records": 30 + r, "method": "x",
             "per_class": {"AF": {"positives": 4 + r}, "NSR": {"positives": 20}}} for r in range(2)]
    caption = counts_caption(rows)
    assert caption.splitlines()[0] == "test records per repeat: 30, 31; test positives per class: AF 4/5, NSR 20/20"
    assert caption.splitlines()[1].startswith("warning: AF had fewer than 10 test positives")
    assert len(caption.splitlines()) == 2


@pytest.fixture(scope="module")
def three_class_store(tiny_store, tmp_path_factory):
    """The tiny PTB-XL store with a `group` column of three classes (NORM only, MI, other)."""
    store = open_store(tiny_store)
    metadata = store.metadata.copy()
    group = ["" if not labels else "normal" if labels == "NORM" else "mi" if "MI" in labels else "other"
             for labels in metadata["labels"]]
    metadata["group"] = group
    return write_store(tmp_path_factory.mktemp("mc") / "store", np.asarray(store.signals), metadata, store.manifest)


def test_multiclass_run_end_to_end(three_class_store, tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["run", "--data", str(three_class_store), "--task", "column:group",
                                      "--out", str(out), *TINY, "--repeats", "2", "--pretrain-epochs", "1",
                                      "--finetune-epochs", "1", "--methods", "pretrained_linear,supervised",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the caption wraps at the terminal width
    assert "test records per repeat:" in text and "test positives per class: mi" in text
    assert "warning: mi" in text  # few MI patients in a tiny store
    rows = json.loads((out / "metrics.json").read_text())
    assert len(rows) == 4
    for row in rows:
        assert set(row["per_class"]) == {"mi", "normal", "other"}
        assert sum(v["positives"] for v in row["per_class"].values()) == row["test_records"]
        assert 0 <= row["auroc"] <= 1
    checkpoint = rows[0]["checkpoint"]
    evaluated = CliRunner().invoke(cli, ["evaluate", checkpoint, "--data", str(three_class_store), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    payload = json.loads(evaluated.output)
    assert payload["auroc"] == pytest.approx(rows[0]["auroc"])
