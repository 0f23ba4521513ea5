"""Tests of the example plugin itself, run against an installed ecgcl."""

import pytest
import torch

from ecgcl.context import RuntimeContext, create_component
from ecgcl.errors import EcgclError
from ecgcl.manager import PluginManager
from ecgcl.registry import Source

import ecgcl_example_plugin


def make_registry():
    manager = PluginManager()
    manager.register(ecgcl_example_plugin, "example", Source("ecgcl-example-plugin", "test", "example"))
    return manager.registry


def test_registers_one_augmentation_one_encoder_one_task_and_one_objective():
    registry = make_registry()
    assert registry.names("augmentation") == ["baseline_wander"]
    assert registry.names("encoder") == ["gap_cnn"]
    assert registry.names("task") == ["age_at_least"]
    assert registry.names("objective") == ["simsiam"]
    assert registry.names("reader") == ["csv_leads"]


def _write_csv(path, signal, header="I,II,V1 [mV]", rate_line="# fs=250\n"):
    import numpy as np

    rows = "\n".join(",".join(f"{v:.6f}" for v in column) for column in np.asarray(signal).T)
    path.write_text(rate_line + header + "\n" + rows + "\n")


def test_csv_reader_recognises_lead_tables_only_and_reads_units(tmp_path):
    import numpy as np

    from ecgcl_example_plugin.csv_reader import CsvLeadsReader

    signal = np.vstack([np.sin(np.linspace(0, 20, 500)) * 800, np.cos(np.linspace(0, 20, 500)) * 600,
                        np.sin(np.linspace(0, 9, 500))])
    _write_csv(tmp_path / "r1.csv", signal)
    (tmp_path / "labels.csv").write_text("record_id,labels\nr1,AF\n")
    head = (tmp_path / "r1.csv").read_bytes()[:4096]
    assert CsvLeadsReader.recognises(tmp_path / "r1.csv", head)
    assert not CsvLeadsReader.recognises(tmp_path / "labels.csv", (tmp_path / "labels.csv").read_bytes())
    reader = CsvLeadsReader(tmp_path, files=[tmp_path / "r1.csv"])
    (ref,) = reader.discover()
    record = reader.load(ref)
    assert record.fs == 250 and record.leads == ["I", "II", "V1"] and record.units == ["uV", "uV", "mV"]
    np.testing.assert_allclose(record.signal, signal, atol=1e-5)


def test_age_task_targets():
    import pandas as pd

    metadata = pd.DataFrame({"labels": ["", "", "", ""], "age": [45, 71, None, 300]})
    targets = make_registry().create("task", "age_at_least", years=60).targets(metadata)
    assert targets.labelled.tolist() == [True, True, False, False]
    assert targets.y[:2].tolist() == [0.0, 1.0] and targets.class_names == ("under 60", "60 or older")


def test_baseline_wander_is_slow_scaled_and_per_sample():
    batch = torch.randn(4, 12, 1000)
    gen = torch.Generator().manual_seed(0)
    out = make_registry().create("augmentation", "baseline_wander", amplitude=0.5, fs=100.0)(batch, gen)
    drift = out - batch
    assert out.shape == batch.shape
    ratio = drift.abs().amax(dim=-1) / batch.std(dim=-1)
    assert torch.all(ratio <= 0.5 + 1e-4) and torch.all(ratio > 0.05)
    assert not torch.allclose(drift[0, 0] / batch[0, 0].std(), drift[1, 0] / batch[1, 0].std())


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_the_runtime_gives_the_store_rate_and_the_drift_stays_below_half_a_hertz(fs):
    context = RuntimeContext(fs=fs, leads=("I",), length=int(10 * fs), in_leads=1)
    wander = create_component(make_registry(), "augmentation", "baseline_wander", {"amplitude": 1.0}, context,
                              where="{key}")
    assert wander.fs == fs
    batch = torch.ones(8, 1, int(10 * fs)) + 0.01 * torch.randn(8, 1, int(10 * fs))
    drift = wander(batch, torch.Generator().manual_seed(1)) - batch
    spectrum = torch.fft.rfft(drift[:, 0], dim=-1).abs()
    peak_hz = spectrum.argmax(dim=-1).float() * fs / drift.shape[-1]
    assert torch.all(peak_hz <= 0.5 + 1 / 10)  # one frequency bin of a 10 s record


def test_fs_set_by_hand_is_refused():
    context = RuntimeContext(fs=500.0, leads=("I",), length=5000, in_leads=1)
    with pytest.raises(EcgclError, match=r"fs is set from the store \(500 Hz\)"):
        create_component(make_registry(), "augmentation", "baseline_wander", {"fs": 100.0}, context, where="{key}")


@pytest.mark.parametrize("fs, kernel", [(100.0, 7), (500.0, 35)])
def test_gap_cnn_maps_to_embed_dim_with_kernels_in_milliseconds(fs, kernel):
    encoder = make_registry().create("encoder", "gap_cnn", in_leads=3, length=500, fs=fs, embed_dim=16)
    assert encoder.kernel_size == kernel
    assert encoder(torch.randn(2, 3, 500)).shape == (2, 16)


def test_simsiam_stops_the_gradient_on_the_projection_side():
    p1, p2, z1, z2 = (torch.randn(4, 8, requires_grad=True) for _ in range(4))
    loss = (ecgcl_example_plugin.negative_cosine(p1, z2) + ecgcl_example_plugin.negative_cosine(p2, z1)) / 2
    loss.backward()
    assert z1.grad is None and z2.grad is None and p1.grad is not None and p2.grad is not None
    assert -1.0 <= loss.item() <= 1.0


def test_simsiam_trains_an_encoder_on_real_records():
    import numpy as np

    from ecgcl.compose import parse_augmentations
    from ecgcl.data.sample import sample_store_path
    from ecgcl.data.store import open_store
    from ecgcl.engine.pretraining import PretrainEncoder

    store = open_store(sample_store_path())
    registry = make_registry()
    torch.manual_seed(0)
    encoder = registry.create("encoder", "gap_cnn", in_leads=12, length=1000, fs=100.0, embed_dim=8, width=4)
    context = RuntimeContext(fs=100.0, leads=tuple(store.leads), length=1000, in_leads=12)
    objective = create_component(registry, "objective", "simsiam", {}, context.replace(
        embed_dim=8, projection_dim=8, augmentation=parse_augmentations("baseline_wander", registry, context),
        encoder=encoder), where="{key}")
    assert objective.takes_loss is False and objective.predictor[0].out_features == 2  # a 8 // 4 bottleneck
    view = PretrainEncoder(encoder, window=1000, representation="time")
    batch = torch.tensor(np.asarray(store.signals[:16]), dtype=torch.float32)
    optimizer = torch.optim.Adam([*encoder.parameters(), *objective.parameters()], lr=1e-2)
    losses = []
    for _ in range(6):
        loss = objective(view, batch, torch.arange(16), torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(-1.0 <= value <= 1.0 for value in losses) and losses[-1] < losses[0], losses
