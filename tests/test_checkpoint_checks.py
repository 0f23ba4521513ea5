"""A checkpoint refuses a store with another rate or records shorter than its window, maps another lead order by
name, and reports a different filter."""

import numpy as np
import pandas as pd
import pytest

from ecgcl.data.store import open_store, write_store
from ecgcl.engine.checkpoint import check_store_matches, same_preprocessing, store_meta
from ecgcl.engine.lead_mapping import lead_plan_for
from ecgcl.errors import EcgclError

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def make_store(path, leads, *, fs=100.0, samples=200, band="0.5-40"):
    metadata = pd.DataFrame({"record_id": ["1", "2"], "patient_id": ["a", "b"], "labels": ["NORM", "MI"]})
    manifest = {"fs": fs, "leads": leads, "options": {"filter": band}}
    signals = np.random.default_rng(0).normal(size=(2, len(leads), samples)).astype(np.float32)
    return open_store(write_store(path, signals, metadata, manifest))


def test_same_store_passes_and_lead_spelling_does_not_matter(tmp_path):
    meta = store_meta(make_store(tmp_path / "a", LEADS))
    upper = [name.upper() for name in LEADS]
    check_store_matches(meta, make_store(tmp_path / "b", upper), source="ckpt")


def test_another_lead_order_is_mapped_by_name_and_only_another_rate_or_records_below_the_window_are_refused(
        tmp_path):
    """`finetune --checkpoint` and `run --pretrained` map those first (`ecgcl.data.adapt`); records of at least
    the window are cut into windows by the model, whatever their length."""
    meta = {**store_meta(make_store(tmp_path / "a", LEADS)), "window": 200}
    swapped = LEADS[1:2] + LEADS[:1] + LEADS[2:]
    plan = lead_plan_for(meta, make_store(tmp_path / "b", swapped), None, source="ckpt")
    assert plan.positions[:3] == (1, 0, 2) and plan.missing == () and not plan.identity
    check_store_matches(meta, make_store(tmp_path / "c", LEADS, samples=400), source="ckpt")
    with pytest.raises(EcgclError, match="200 samples at 100 Hz.*150 samples at 100 Hz .*at least 200 samples"):
        check_store_matches(meta, make_store(tmp_path / "e", LEADS, samples=150), source="ckpt")
    with pytest.raises(EcgclError, match="at 500 Hz"):
        check_store_matches(meta, make_store(tmp_path / "d", LEADS, fs=500.0), source="ckpt")


def test_filter_difference_is_reported(tmp_path):
    meta = store_meta(make_store(tmp_path / "a", LEADS))
    assert same_preprocessing(meta, make_store(tmp_path / "b", LEADS))
    assert not same_preprocessing(meta, make_store(tmp_path / "c", LEADS, band=None))
