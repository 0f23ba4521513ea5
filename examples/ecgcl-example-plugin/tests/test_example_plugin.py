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
    assert registry.names("monitor") == ["embedding_norm"]
    assert registry.names("tracker") == ["csv_log"]


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


def _monitor_inputs(vectors, pool):
    """A `MonitorInputs` whose `embed(rows)` returns rows of `vectors` and records which rows were asked for."""
    import numpy as np

    from ecgcl.engine.monitoring import MonitorInputs

    asked = []

    def embed(rows):
        asked.append(np.asarray(rows).copy())
        return vectors[np.asarray(rows)]

    return MonitorInputs(embed=embed, pool=np.asarray(pool), embed_dim=vectors.shape[1]), asked


def test_embedding_norm_is_the_mean_l2_norm_of_the_first_max_records_of_the_pool():
    import numpy as np

    vectors = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    pool = np.arange(3, 40, 2)  # 19 rows
    inputs, asked = _monitor_inputs(vectors, pool)
    monitor = make_registry().create("monitor", "embedding_norm", max_records=5)
    figures = monitor(inputs)
    assert list(figures) == ["embedding_norm"]
    assert asked[0].tolist() == pool[:5].tolist()
    expected = np.mean([np.sqrt(np.sum(vectors[r].astype(np.float64) ** 2)) for r in pool[:5]])
    assert figures["embedding_norm"] == pytest.approx(expected, rel=1e-6)
    whole = make_registry().create("monitor", "embedding_norm")(_monitor_inputs(vectors, pool)[0])
    assert whole["embedding_norm"] == pytest.approx(np.linalg.norm(vectors[pool], axis=1).mean(), rel=1e-6)
    assert (monitor.name, monitor.primary, monitor.needs_labels, monitor.higher_is_better) == (
        "embedding_norm", "embedding_norm", False, True)


def test_embedding_norm_scales_with_the_embeddings_and_is_nan_on_an_empty_pool():
    import numpy as np

    vectors = np.random.default_rng(1).normal(size=(10, 4))
    monitor = make_registry().create("monitor", "embedding_norm")
    base = monitor(_monitor_inputs(vectors, np.arange(10))[0])["embedding_norm"]
    assert monitor(_monitor_inputs(3 * vectors, np.arange(10))[0])["embedding_norm"] == pytest.approx(3 * base)
    assert np.isnan(monitor(_monitor_inputs(vectors, np.empty(0, dtype=np.int64))[0])["embedding_norm"])
    with pytest.raises(EcgclError, match="embedding_norm: max_records must be a positive integer"):
        make_registry().create("monitor", "embedding_norm", max_records=0)


def test_csv_log_writes_nothing_on_start_then_one_row_per_figure_and_artifact(tmp_path):
    import pandas as pd

    tracker = make_registry().create("tracker", "csv_log")
    tracker.start(tmp_path, {"objective": "contrastive"})
    assert list(tmp_path.iterdir()) == []
    tracker.log("pretrain", 1, {"loss": 5.25, "rankme": 3.5})
    tracker.log("pretrain", 2, {"loss": 4.75})
    tracker.unit_finished("pretrain")
    tracker.log("repeat 1 · finetune", 1, {"val_loss": float("nan")})
    (tmp_path / "config.json").write_text("{}")
    tracker.finish([tmp_path / "config.json", tmp_path / "summary.json"])
    text = (tmp_path / "tracked.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "unit,step,figure,value" and text.count("unit,step") == 1
    table = pd.read_csv(tmp_path / "tracked.csv", dtype={"unit": str, "figure": str})
    assert table.iloc[:3][["unit", "step", "figure", "value"]].values.tolist() == [
        ["pretrain", 1, "loss", 5.25], ["pretrain", 1, "rankme", 3.5], ["pretrain", 2, "loss", 4.75]]
    assert table.iloc[3]["unit"] == "repeat 1 · finetune" and pd.isna(table.iloc[3]["value"])
    artifacts = table[table["unit"] == "artifact"]
    assert artifacts["figure"].tolist() == ["config.json", "summary.json"]
    assert artifacts["step"].isna().all() and artifacts["value"].isna().all()


def test_csv_log_appends_to_an_existing_file_and_takes_its_file_name(tmp_path):
    import pandas as pd

    for step in (1, 2):  # two runs into one folder (a resumed run): one header, both runs' rows
        tracker = make_registry().create("tracker", "csv_log", file="figures.csv")
        tracker.start(tmp_path, {})
        tracker.log("pretrain", step, {"loss": float(step)})
    table = pd.read_csv(tmp_path / "figures.csv")
    assert table["step"].tolist() == [1, 2] and table["value"].tolist() == [1.0, 2.0]
    with pytest.raises(EcgclError, match="csv_log: file must be a plain file name"):
        make_registry().create("tracker", "csv_log", file="../elsewhere.csv")
