"""`ecgcl export`: a checkpoint as a Hugging Face layout folder (safetensors, config, model card) that every
command and `ecgcl.load_encoder` take back, locally or through `hf://` (tested offline against a cache)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import ecgcl
from ecgcl.cli.main import cli
from ecgcl.data.sample import sample_store_path
from ecgcl.errors import EcgclError

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--device", "cpu"]
EXPORTED = {"model.safetensors", "config.json", "README.md"}


def invoke(*args: str):
    outcome = CliRunner().invoke(cli, [str(a) for a in args])
    return outcome


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A one-repeat `ecgcl run` (pretrained LP): its pretrain.pt and best classifier, with summary.json."""
    out = tmp_path_factory.mktemp("export") / "run"
    outcome = invoke("run", "--out", out, "--repeats", "1", "--pretrain-epochs", "1", "--finetune-epochs", "2",
                     "--methods", "pretrained_linear", *TINY)
    assert outcome.exit_code == 0, outcome.output
    return out


def test_export_round_trip_gives_identical_embeddings_and_holds_no_pickle(run_folder, tmp_path):
    (checkpoint,) = run_folder.glob("repeats/**/pretrain.pt")
    outcome = invoke("export", checkpoint, tmp_path / "model")
    assert outcome.exit_code == 0, outcome.output
    folder = tmp_path / "model"
    assert {p.name for p in folder.iterdir()} == EXPORTED
    for file in folder.iterdir():
        head = file.read_bytes()[:2]
        assert head[:1] != b"\x80" and b"PK" != head  # neither a pickle nor a torch zip archive
    config = json.loads((folder / "config.json").read_text())
    assert config["meta"]["encoder"] == "cnn" and config["meta"]["fs"] == 100.0 and config["kind"] == "encoder"
    assert "heldout_patients" not in config["meta"]  # patient ids of the training split stay home
    card = (folder / "README.md").read_text()
    assert "library_name: ecgcl" in card and "| pretrained_linear |" in card and "CC BY 4.0" in card
    store = ecgcl.open_store(sample_store_path())
    signals = np.asarray(store.signals[:20])
    np.testing.assert_array_equal(ecgcl.load_encoder(folder).embed(signals, fs=100, leads=store.leads),
                                  ecgcl.load_encoder(checkpoint).embed(signals, fs=100, leads=store.leads))
    again = invoke("export", checkpoint, folder)
    assert again.exit_code == 2 and "already exists" in again.output


def test_commands_take_an_export_folder(run_folder, tmp_path):
    (pretrained,) = run_folder.glob("repeats/**/pretrain.pt")
    assert invoke("export", pretrained, tmp_path / "encoder").exit_code == 0
    tuned = invoke("finetune", "--checkpoint", tmp_path / "encoder", "--out", tmp_path / "ft", "--mode", "linear",
                   "--device", "cpu")
    assert tuned.exit_code == 0, tuned.output
    (best,) = (tmp_path / "ft").glob("*.best.pt")
    assert invoke("export", best, tmp_path / "classifier").exit_code == 0
    data = str(sample_store_path())
    from_file = invoke("evaluate", best, "--data", data, "--device", "cpu")
    from_folder = invoke("evaluate", tmp_path / "classifier", "--data", data, "--device", "cpu")
    assert from_file.exit_code == 0 and from_folder.exit_code == 0, from_folder.output
    assert from_file.output.split("┏", 1)[1] == from_folder.output.split("┏", 1)[1]  # the same metrics table
    embedded = invoke("embed", tmp_path / "encoder", "--data", data, "--out", tmp_path / "z.npy")
    assert embedded.exit_code == 0, embedded.output


def test_broken_folders_are_one_line(run_folder, tmp_path):
    (checkpoint,) = run_folder.glob("repeats/**/pretrain.pt")
    good = tmp_path / "good"
    assert invoke("export", checkpoint, good).exit_code == 0
    cases = {}
    for name, damage in {
        "missing": lambda f: (f / "model.safetensors").unlink(),
        "foreign": lambda f: (f / "model.safetensors").write_bytes(b"\x80\x04\x95 not safetensors at all"),
        "unregistered": lambda f: (f / "config.json").write_text((f / "config.json").read_text().replace(
            '"encoder": "cnn"', '"encoder": "mamba_ecg"').replace('"name": "ecgcl"', '"name": "ecgcl-mamba"')),
        "not_ecgcl": lambda f: (f / "config.json").write_text('{"architectures": ["BertModel"]}'),
    }.items():
        folder = tmp_path / name
        shutil.copytree(good, folder)
        damage(folder)
        outcome = invoke("embed", folder, "--data", str(sample_store_path()), "--out", tmp_path / f"{name}.npy")
        assert outcome.exit_code == 2 and "Traceback" not in outcome.output, outcome.output
        assert len(outcome.output.strip().splitlines()) == 1
        cases[name] = outcome.output
    assert "no model.safetensors" in cases["missing"]
    assert "is not a safetensors weight file" in cases["foreign"]
    assert "mamba_ecg" in cases["unregistered"] and "pip install ecgcl-mamba" in cases["unregistered"]
    assert "is not an ecgcl export" in cases["not_ecgcl"]


def test_hub_ids_resolve_offline_from_the_cache(run_folder, tmp_path, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    (checkpoint,) = run_folder.glob("repeats/**/pretrain.pt")
    assert invoke("export", checkpoint, tmp_path / "model").exit_code == 0
    cache = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--ecg-lab--tiny-cnn" / "snapshots" / revision
    shutil.copytree(tmp_path / "model", snapshot)
    (cache / "models--ecg-lab--tiny-cnn" / "refs").mkdir()
    (cache / "models--ecg-lab--tiny-cnn" / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    store = ecgcl.open_store(sample_store_path())
    signals = np.asarray(store.signals[:5])
    np.testing.assert_array_equal(ecgcl.load_encoder("hf://ecg-lab/tiny-cnn").embed(signals, fs=100),
                                  ecgcl.load_encoder(checkpoint).embed(signals, fs=100))
    with pytest.raises(EcgclError, match="hf://ecg-lab/absent: cannot fetch"):
        ecgcl.load_encoder("hf://ecg-lab/absent")
    with pytest.raises(EcgclError, match="expected hf://ORG/NAME"):
        ecgcl.load_encoder("hf://just-a-name")


def test_push_to_hub_uploads_the_folder_or_says_why_not(run_folder, tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    (checkpoint,) = run_folder.glob("repeats/**/pretrain.pt")
    calls = []

    class FakeApi:
        def create_repo(self, repo, private=False, exist_ok=False):
            calls.append(("create", repo, private))

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls.append(("upload", repo_id, sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    outcome = invoke("export", checkpoint, tmp_path / "model", "--push-to-hub", "ecg-lab/tiny-cnn", "--private")
    assert outcome.exit_code == 0, outcome.output
    assert calls == [("create", "ecg-lab/tiny-cnn", True), ("upload", "ecg-lab/tiny-cnn", sorted(EXPORTED))]
    assert "https://huggingface.co/ecg-lab/tiny-cnn" in outcome.output

    class NoToken(FakeApi):
        def create_repo(self, *args, **kwargs):
            raise RuntimeError("401 Client Error: Unauthorized, invalid token")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoToken)
    outcome = invoke("export", checkpoint, tmp_path / "again", "--push-to-hub", "ecg-lab/tiny-cnn")
    assert outcome.exit_code == 2 and "Unauthorized" in outcome.output and "HF_TOKEN" in outcome.output
