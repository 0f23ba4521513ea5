"""A model folder from elsewhere is untrusted input: every edit of a real exported folder's `config.json` (each
field deleted, retyped, set to 0, -1, a huge number, an empty list, a wrong string) and of its safetensors
file (truncated, a header claiming a shape the data does not hold, tensors added or removed) is either loaded
and embeds the numbers of the original, or is one `EcgclError` line naming the field, within 5 s, under a
memory limit (RLIMIT_AS) that a model sized by the edited config could not fit in."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ecgcl
from ecgcl.data.sample import sample_store_path

MUTATIONS = {"deleted": ..., "string": "zzz", "zero": 0, "minus_one": -1, "huge": 10**12, "empty_list": [],
             "table": {"x": 1}, "null": None}
SECONDS = 5.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real export: a cnn encoder built for the sample store's records, through `export_checkpoint`."""
    import torch

    from ecgcl.engine.checkpoint import store_meta
    from ecgcl.engine.export import export_checkpoint
    from ecgcl.engine.model import build_encoder
    from ecgcl.manager import get_registry

    registry = get_registry()
    store = ecgcl.open_store(sample_store_path())
    torch.manual_seed(0)
    args = {"width": 8, "depth": 1}
    encoder = build_encoder(registry, "cnn", in_leads=len(store.leads), window=int(store.signals.shape[2]),
                            representation="time", embed_dim=16, encoder_args=args)
    meta = {"encoder": "cnn", "encoder_args": args, "embed_dim": 16, "window": int(store.signals.shape[2]),
            "representation": "time", "task": None, "objective": "contrastive", "aug": "permute+noise",
            "missing_leads": None, **store_meta(store)}
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    export_checkpoint({"kind": "encoder", "meta": meta, "encoder": encoder.state_dict()}, folder,
                      source="a test encoder", registry=registry)
    return folder


def _paths(value, prefix=()):
    """Every key path of a JSON table (tables inside it too), the leaves and the tables themselves."""
    for key, inner in value.items():
        yield (*prefix, key)
        if isinstance(inner, dict):
            yield from _paths(inner, (*prefix, key))


def _edited(config: dict, path: tuple, mutation) -> dict:
    edited = json.loads(json.dumps(config))
    parent = edited
    for key in path[:-1]:
        parent = parent[key]
    if mutation is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = mutation
    return edited


def _header(weights: Path) -> tuple[dict, bytes]:
    data = weights.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]), data[8 + size:]


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _weight_cases(weights: Path) -> dict[str, bytes]:
    header, body = _header(weights)
    names = sorted(k for k in header if k != "__metadata__")
    first = names[0]
    claim = json.loads(json.dumps(header))
    claim[first]["shape"] = [s * 4 for s in claim[first]["shape"]]
    dropped = {k: v for k, v in header.items() if k != names[-1]}
    added = json.loads(json.dumps(header))
    added["extra.weight"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(body), len(body) + 4]}
    huge = json.loads(json.dumps(header))
    huge[first]["shape"] = [10**12, 10**6]
    raw = weights.read_bytes()
    return {"truncated": raw[:len(raw) // 2], "header_only": raw[:8 + struct.unpack("<Q", raw[:8])[0]],
            "shape_claim": _with_header(claim, body), "huge_shape": _with_header(huge, body),
            "tensor_removed": _with_header(dropped, body), "tensor_added": _with_header(added, body + b"\0" * 4),
            "empty": b""}


RUNNER = textwrap.dedent('''
    import json, resource, sys, time, traceback
    import numpy as np
    import ecgcl
    from ecgcl.errors import EcgclError

    cases, signals_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    signals = np.load(signals_path)
    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    limit = vm + (3 << 30)  # 3 GiB of address space above the interpreter and torch (oneDNN reserves some)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    ecgcl.load_encoder(sys.argv[4]).embed(signals, fs=100)  # the original, once: imports and kernels warm
    results = {}
    for case in json.loads(open(cases).read()):
        began = time.monotonic()
        try:
            vectors = ecgcl.load_encoder(case["folder"]).embed(signals, fs=100)
            outcome = {"kind": "loaded", "vectors": vectors.tolist()}
        except EcgclError as error:
            outcome = {"kind": "error", "message": str(error)}
        except BaseException as error:  # noqa: BLE001  (anything else is a failure the test reports)
            outcome = {"kind": "crash", "message": "".join(traceback.format_exception_only(type(error), error))}
        outcome["seconds"] = time.monotonic() - began
        results[case["name"]] = outcome
    open(out, "w").write(json.dumps(results))
''')


def _run_cases(cases: list[dict], signals: np.ndarray, tmp_path: Path, original: Path) -> dict:
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    np.save(tmp_path / "signals.npy", signals)
    (tmp_path / "runner.py").write_text(RUNNER)
    done = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "cases.json"),
                           str(tmp_path / "signals.npy"), str(tmp_path / "results.json"), str(original)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


def _check(results: dict, original: np.ndarray, named: dict[str, str]) -> None:
    problems = []
    for name, outcome in results.items():
        if outcome["seconds"] > SECONDS:
            problems.append(f"{name}: took {outcome['seconds']:.1f} s")
        if outcome["kind"] == "crash":
            problems.append(f"{name}: not an EcgclError: {outcome['message'].strip()}")
        elif outcome["kind"] == "error":
            message = outcome["message"]
            if "\n" in message.strip() or named[name] not in message:
                problems.append(f"{name}: the error does not name {named[name]!r} in one line: {message}")
        elif not np.allclose(np.asarray(outcome["vectors"]), original, rtol=0, atol=0):
            problems.append(f"{name}: loaded, but embeds other numbers than the original")
    assert not problems, "\n".join(problems)


def test_every_edit_of_config_json_loads_identically_or_is_one_line_naming_the_field(exported, tmp_path):
    store = ecgcl.open_store(sample_store_path())
    signals = np.asarray(store.signals[:4], dtype=np.float32)
    original = ecgcl.load_encoder(exported).embed(signals, fs=100)
    config = json.loads((exported / "config.json").read_text())
    cases, named = [], {}
    for path in _paths(config):
        for label, mutation in MUTATIONS.items():
            name = f"{'.'.join(path)}:{label}"
            folder = tmp_path / "cases" / name.replace(":", "_")
            folder.mkdir(parents=True)
            for file in exported.iterdir():
                (folder / file.name).symlink_to(file)
            (folder / "config.json").unlink()
            (folder / "config.json").write_text(json.dumps(_edited(config, path, mutation)))
            cases.append({"name": name, "folder": str(folder)})
            # the top-level fields say what the folder is: their errors name the folder's format or kind
            named[name] = path[-1] if path[0] == "meta" or len(path) > 1 else "config.json"
    assert len(cases) > 150
    _check(_run_cases(cases, signals, tmp_path, exported), original, named)


def test_every_damaged_weight_file_is_one_line(exported, tmp_path):
    store = ecgcl.open_store(sample_store_path())
    signals = np.asarray(store.signals[:4], dtype=np.float32)
    original = ecgcl.load_encoder(exported).embed(signals, fs=100)
    cases, named = [], {}
    for name, data in _weight_cases(exported / "model.safetensors").items():
        folder = tmp_path / name
        folder.mkdir()
        for file in exported.iterdir():
            (folder / file.name).symlink_to(file)
        (folder / "model.safetensors").unlink()
        (folder / "model.safetensors").write_bytes(data)
        cases.append({"name": name, "folder": str(folder)})
        named[name] = "model.safetensors"
    results = _run_cases(cases, signals, tmp_path, exported)
    _check(results, original, named)
    assert all(results[name]["kind"] == "error" for name in results), results.keys()


@pytest.mark.parametrize("field, value, expected", [
    ("width", 32, "encoder_args.width 32 in config.json, but the weights hold 8"),
    ("width", 4096, "field meta.encoder_args.width is 4,096, but the weights hold no size above"),
    ("width", 10**6, "field meta.encoder_args.width is 1,000,000, but the weights hold no size above"),
    ("fs", 0, "field meta.fs is 0; expected a sampling rate in Hz above 0"),
    ("leads", [], "field meta.leads is []; expected a non-empty list of distinct lead names"),
])
def test_the_reported_edits_are_one_line_before_any_model_is_built(exported, tmp_path, field, value, expected):
    from click.testing import CliRunner

    from ecgcl.cli.main import cli

    config = json.loads((exported / "config.json").read_text())
    path = ("meta", "encoder_args", field) if field == "width" else ("meta", field)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((exported / "model.safetensors").read_bytes())
    (folder / "config.json").write_text(json.dumps(_edited(config, path, value)))
    with pytest.raises(ecgcl.EcgclError, match="config.json|model"):
        ecgcl.load_encoder(folder)
    for command in (["embed", folder, "--data", sample_store_path(), "--out", tmp_path / "z.npy"],
                    ["finetune", "--checkpoint", folder, "--out", tmp_path / "ft", "--mode", "linear", "--device",
                     "cpu"]):
        outcome = CliRunner().invoke(cli, [str(a) for a in command])
        assert outcome.exit_code == 2 and "Traceback" not in outcome.output, outcome.output
        assert expected in outcome.output and len(outcome.output.strip().splitlines()) == 1, outcome.output
    assert not (tmp_path / "z.npy").exists() and not (tmp_path / "ft").exists()


def test_checkpoint_files_get_the_same_checks(exported, tmp_path):
    """pretrain.pt and *.best.pt (loaded with weights_only) are checked against their metadata the same way."""
    import torch

    from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint
    from ecgcl.engine.model import Classifier, encoder_from_meta
    from ecgcl.manager import get_registry

    loaded = load_checkpoint(exported)
    meta = dict(loaded["meta"])
    encoder = encoder_from_meta(meta, get_registry(), source="test")
    classifier = Classifier(encoder, 3, window=meta["window"], representation="time")
    tuned = {**meta, "num_outputs": 3, "target_kind": "multilabel", "class_names": ["a", "b", "c"], "dropout": 0.0}
    good = {"pretrain.pt": {"kind": "encoder", "meta": meta, "encoder": loaded["encoder"]},
            "linear.best.pt": {"kind": "classifier", "meta": tuned, "model": classifier.state_dict()}}
    for name, payload in good.items():
        assert load_checkpoint(save_checkpoint(tmp_path / name, payload))["kind"] == payload["kind"]
    edits = {
        "width": ("pretrain.pt", {"encoder_args": {"width": 32, "depth": 1}}, "encoder_args.width 32 in its metadata"),
        "fs": ("pretrain.pt", {"fs": float("nan")}, "field meta.fs is nan"),
        "outputs": ("linear.best.pt", {"num_outputs": 5, "class_names": list("abcde")},
                    "num_outputs 5 in its metadata, but the weights hold 3"),
        "kind": ("linear.best.pt", {"target_kind": "regression"}, "field meta.target_kind is 'regression'"),
    }
    for label, (name, change, expected) in edits.items():
        payload = good[name]
        path = save_checkpoint(tmp_path / f"{label}-{name}", {**payload, "meta": {**payload["meta"], **change}})
        with pytest.raises(ecgcl.EcgclError) as raised:
            load_checkpoint(path)
        assert expected in str(raised.value) and str(path) in str(raised.value), str(raised.value)
    broken = save_checkpoint(tmp_path / "bad.pt", {**good["pretrain.pt"], "encoder": {"w": [1, 2]}})
    with pytest.raises(ecgcl.EcgclError, match="weight 'w' is list, expected a tensor"):
        load_checkpoint(broken)
    reloaded = load_checkpoint(tmp_path / "pretrain.pt")["encoder"]
    assert reloaded.keys() == loaded["encoder"].keys()
    assert all(torch.equal(reloaded[k], loaded["encoder"][k]) for k in reloaded)
