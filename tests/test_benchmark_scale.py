"""benchmarks/scale.py at a size a test can afford: the sizes the docs offer (`--max-records`) must run, also
where the pretraining pool holds fewer records than the timed steps draw (the steps then run across epochs)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_PTBXL = REPO / "tests" / "data" / "ptbxl"


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("ecgcl_benchmark_scale", REPO / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretraining_steps_run_across_epochs_of_a_small_pool(scale):
    assert scale.pretrain_epochs(2819, 64, 50) == (2, 64)  # 44 full batches an epoch: the --max-records 4000 case
    assert scale.pretrain_epochs(3200, 64, 50) == (1, 64)
    assert scale.pretrain_epochs(30, 64, 5) == (5, 30)  # one batch of the whole pool an epoch
    with pytest.raises(SystemExit, match="pool is empty"):
        scale.pretrain_epochs(0, 64, 5)


def test_a_tiny_size_runs_ingest_and_more_steps_than_one_epoch_holds(scale, tmp_path: Path):
    """400 records tiled from the real fixture records: WFDB files -> ingest (with the labels table), then 12
    pretraining steps of 64 from a pool of about 280 records (4 batches an epoch), each stage in its own process."""
    out = tmp_path / "scale.json"
    scale.main(["--max-records", "400", "--ptbxl", str(FIXTURE_PTBXL), "--work", str(tmp_path),
                "--stages", "ingest,pretrain", "--steps", "12", "--batch", "64", "--workers", "1",
                "--reserve-gb", "0", "--json", str(out)])
    (size,) = json.loads(out.read_text())["sizes"]
    assert size["n"] == 400
    (ingested,) = size["stages"]["ingest"]
    assert ingested["records"] == 400 and ingested["skipped"] == 0
    assert ingested["peak_anon_mb"] >= ingested["base_anon_mb"] > 0 and ingested["metadata_mb"] > 0
    (pretrained,) = size["stages"]["pretrain"]
    assert 192 <= pretrained["pool"] < 400 and pretrained["epochs"] == -(-12 // (pretrained["pool"] // 64)) > 1
    assert pretrained["records"] == 64 and pretrained["seconds"] > 0
    assert 0 < pretrained["before_first_step_seconds"] < pretrained["setup_seconds"]
    assert not list(tmp_path.glob("ecgcl-scale-*")), "the work folder is removed at the end"
