"""`ecgcl explain CHECKPOINT --data STORE --records ID,...`: where a fine-tuned classifier looks, with checks.

For each record and class (`--class C`, else the class the model gives the highest probability) the three maps
of `ecgcl.protocol.attributions` are computed, checked (`ecgcl.protocol.attribution_checks`) and written to
`out`: `ID_CLASS_METHOD.png` (the map over the 12-lead sheet, its title saying whether the checks passed),
`ID_CLASS_leads.png` (each lead's share of |attribution| per method), `attributions.csv` (record, class,
method, lead, window start and end in seconds, value) and `checks.csv`. Every input is checked before the
first file is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcl.errors import EcgclError, did_you_mean


@dataclass
class Explanation:
    """One record's maps for one class: (L, T) `maps` and (L, windows) `windows` per method, each lead's share
    (`importance`), the checks per method and the files written."""

    record_id: str
    class_name: str
    probability: float
    maps: dict[str, np.ndarray]
    windows: dict[str, np.ndarray]
    importance: dict[str, np.ndarray]
    checks: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per failed check, naming the record, class and method."""
        return [f"record {self.record_id}, class {self.class_name}, {method}: {failure}"
                for method, check in self.checks.items() for failure in check.failures()]


def explain_signal(model, signal: np.ndarray, *, fs: float, kind: str, class_index: int, window: int,
                   steps: int = 32, seed: int = 0, record_id: str = "", class_name: str = "") -> Explanation:
    """Maps, lead shares and checks of `model` ((B, L, T) -> logits; `kind` binary, multiclass or multilabel)
    for class `class_index` of one record (`signal`: (L, T) mV); nothing is written."""
    import torch

    from ecgcl.protocol.attribution_checks import (Checks, area, deletion_curves, randomised_copy,
                                                   rank_correlation)
    from ecgcl.protocol.attributions import (METHODS, attribute, class_score, filtered_baseline, lead_importance,
                                             window_values)

    model = model.eval()
    x = torch.as_tensor(np.asarray(signal, dtype=np.float32))[None]
    score, shuffled = class_score(model, class_index, kind), class_score(randomised_copy(model, seed), class_index, kind)
    with torch.no_grad():
        probability = float(score(x)[0])
    baseline = filtered_baseline(x, fs)
    result = Explanation(record_id, class_name, probability, {}, {}, {})
    for method in METHODS:
        values = attribute(score, x, method, fs=fs, window=window, steps=steps)[0].detach().double().numpy()
        other = attribute(shuffled, x, method, fs=fs, window=window, steps=steps)[0].detach().double().numpy()
        windows = window_values(values, method, window)
        top, rand = deletion_curves(score, x, baseline, windows, window, seed=seed)
        result.maps[method], result.windows[method] = values, windows
        result.importance[method] = lead_importance(values)
        result.checks[method] = Checks(rank_correlation(windows, window_values(other, method, window)), top.tolist(),
                                       rand.tolist(), area(top), area(rand))
    return result


def explain(checkpoint: str | os.PathLike, data: str | os.PathLike, *, records: str | list[str],
            out: str | os.PathLike = "explain", class_name: str | None = None, window_s: float = 0.5,
            steps: int = 32, seed: int = 0, registry=None, reporter=None) -> list[Explanation]:
    """`ecgcl explain`: explain the records `records` of store `data` for a fine-tuned `checkpoint`, write the
    files of the module docstring to `out`, and return the explanations; failed checks go to `reporter`."""
    from ecgcl.data.picks import pick_rows
    from ecgcl.data.show import record_name, resolve_store
    from ecgcl.engine.checkpoint import load_checkpoint_of_kind
    from ecgcl.engine.evaluate import load_classifier
    from ecgcl.engine.lead_mapping import lead_plan_for
    from ecgcl.files import make_folders, write_csv
    from ecgcl.protocol.attributions import require_captum
    from ecgcl.protocol.explain_plots import save_explanation_figures

    require_captum()
    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    if not window_s > 0 or steps < 2:
        raise EcgclError(f"--window expects seconds > 0 and --steps at least 2, got {window_s} and {steps}")
    source = f"checkpoint {checkpoint}"
    payload = load_checkpoint_of_kind(checkpoint, "classifier", needed_by="`explain` needs a classifier (a *.best.pt "
                                      "file from `ecgcl run` or `ecgcl finetune`)", registry=registry)
    meta = payload["meta"]
    store = resolve_store(data)
    rows = pick_rows(store, records=records)
    classes = [str(c) for c in meta.get("class_names", [])]
    kind = meta.get("target_kind", "binary")
    if class_name is not None and class_name not in classes:
        raise EcgclError(f"--class: task {meta['task']!r} has no class {class_name!r}{did_you_mean(class_name, classes)}"
                         f"; its classes: {', '.join(classes)}")
    plan = lead_plan_for(meta, store, meta.get("missing_leads"), source=source, registry=registry)
    model = load_classifier(payload, registry, source=source, plan=plan)
    window = max(1, int(round(window_s * store.fs)))
    folder = make_folders(out, "explanation folder")
    results, table, checks = [], [], []
    for row in rows:
        signal = store.read(np.array([row]))[0]
        index = classes.index(class_name) if class_name is not None else _predicted(model, signal, kind)
        name = record_name(store, row)
        result = explain_signal(model, signal, fs=store.fs, kind=kind, class_index=index, window=window,
                                steps=steps, seed=seed, record_id=name, class_name=classes[index])
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}_{classes[index]}")
        result.files = save_explanation_figures(result, signal, store, row, folder, stem)
        table += _rows(result, store.leads, window, store.fs)
        checks += [{"record": name, "class": classes[index], "method": m, "probability": result.probability,
                    "rank_correlation": c.rank_correlation, "deletion_area_top": c.top_area,
                    "deletion_area_random": c.random_area, "passed": c.passed} for m, c in result.checks.items()]
        for line in result.warnings():
            if reporter is not None:
                reporter.warning(line)
        results.append(result)
    import pandas as pd

    write_csv(folder / "attributions.csv", pd.DataFrame(table), what="attributions table")
    write_csv(folder / "checks.csv", pd.DataFrame(checks), what="attribution checks table")
    return results


def _predicted(model, signal: np.ndarray, kind: str) -> int:
    """The class the model gives the highest probability (binary: positive when p >= 0.5)."""
    import torch

    from ecgcl.engine.model import probabilities

    probs = probabilities(model.eval()(torch.as_tensor(signal, dtype=torch.float32)[None]), kind == "multiclass")[0]
    return int(probs >= 0.5) if kind == "binary" else int(torch.argmax(probs))


def _rows(result: Explanation, leads, window: int, fs: float) -> list[dict]:
    out = []
    for method, values in result.windows.items():
        starts = np.arange(values.shape[1]) * window
        ends = np.minimum(starts + window, result.maps[method].shape[1])
        for lead, name in enumerate(leads):
            out += [{"record": result.record_id, "class": result.class_name, "method": method, "lead": name,
                     "start_s": s / fs, "end_s": e / fs, "value": v} for s, e, v in zip(starts, ends, values[lead])]
    return out
