"""`OUT/report.html`: one self-contained page per results folder, written by every `ecgcl run` (and grid) and
rebuilt by `ecgcl report OUT`.

It reads only the folder's own files (config.json, summary.json, metrics.json, robustness.json, grid.json,
history.jsonl, split.json and one checkpoint's metadata) and shows the run's config and an equivalent command, the
data, every result table with how units stopped and the warnings, per-class metrics, every PNG the run drew
(inlined as base64 data URIs: the page needs no network and no other file) and relative links to the raw files.
The page comes from a Jinja2 template with autoescaping on, so user text (paths, labels, ids) is always data,
never markup. Nothing time-dependent is written: rebuilding a folder gives the same page.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

from ecgcl.errors import EcgclError
from ecgcl.metrics import METRIC_NAMES

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"
RAW_SUFFIXES = (".csv", ".json", ".jsonl")
CLASS_METRICS = ("positives", "precision", "recall", "f1", "auroc", "pr_auc")


def write_report(out: Path) -> Path:
    """Render `out/report.html` from the files of the results folder `out` (atomically: a temporary file, then a
    rename). A folder without config.json is not a results folder: one `EcgclError` line."""
    from ecgcl.files import atomic_write

    out = Path(out)
    if not (out / "config.json").is_file():
        raise EcgclError(f"{out} is not an ecgcl results folder: expected the config.json that `ecgcl run` writes")
    html = render_report(out)
    return atomic_write(out / REPORT_FILE, lambda handle: handle.write(html.encode("utf-8")), what="run report")


def report_or_warn(out: Path, reporter) -> Path | None:
    """`write_report` at the end of a run or grid: any failure becomes one warning through `reporter` (the
    results are written; the page is a convenience that `ecgcl report OUT` can make later)."""
    try:
        return write_report(out)
    except Exception as error:  # noqa: BLE001 - never lose a finished run over its page
        reporter.warning(f"report.html not written ({type(error).__name__}: {error}); `ecgcl report {out}` retries")
        return None


def render_report(out: Path) -> str:
    """The report's HTML text for the results folder `out`."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("ecgcl.protocol", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**report_context(Path(out)))


def report_context(out: Path) -> dict[str, Any]:
    """Everything the template shows, read from the folder's files."""
    from ecgcl.protocol.results import counts_caption, endings_caption, pretraining_caption

    config = _read_json(out / "config.json") or {}
    rows = _read_json(out / "metrics.json") or []
    summary = _read_json(out / "summary.json") or []
    notes = [counts_caption(rows), endings_caption(rows),
             pretraining_caption(_chosen(summary), _collapses(out, config))]
    lines = [line for note in notes for line in note.splitlines() if line]
    cells = sorted(p.parent.name for p in (out / "cells").glob(f"*/{REPORT_FILE}")) if (out / "cells").is_dir() else []
    return {"title": out.resolve().name, "out": str(out), "command": f"ecgcl run --config {out / 'config.json'}",
            "config": [(k, _value(v)) for k, v in sorted(config.items())], "data": _data(out, config, rows),
            "tables": _tables(out, rows, summary), "notes": [x for x in lines if not x.startswith("warning: ")],
            "warnings": [x.removeprefix("warning: ") for x in lines if x.startswith("warning: ")],
            "images": _images(out), "cells": cells,
            "files": sorted(p.name for p in out.iterdir() if p.is_file() and p.suffix in RAW_SUFFIXES)}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def _chosen(summary: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pretraining epoch each repeat kept, as `pretraining_caption` takes it, from the summary's rows."""
    row = next((r for r in summary if r.get("pretrain_chosen_epochs")), None)
    if row is None:
        return {}
    return {f"repeat {k + 1} · pretrain": {"epoch": e, "by": row.get("pretrain_select")}
            for k, e in enumerate(row["pretrain_chosen_epochs"])}


def _collapses(out: Path, config: dict[str, Any]) -> list[str]:
    """Pretraining units whose monitors showed a collapsing representation (as the run warned), from history.jsonl."""
    from ecgcl.engine.monitoring import collapse_note
    from ecgcl.protocol.watching import read_history

    found, ranks = {}, {}
    for record in sorted(read_history(out), key=lambda r: (str(r.get("unit")), r["epoch"])):
        unit = str(record.get("unit"))
        if record.get("stage") != "pretrain" or unit in found:
            continue
        note = collapse_note(record, int(config.get("embed_dim") or 1), ranks.get(unit))
        ranks[unit] = record.get("rankme", ranks.get(unit))
        if note:
            found[unit] = f"{unit}, epoch {record['epoch']}: {note}"
    return list(found.values())


def _data(out: Path, config: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Store, records per part, leads, fs, task, classes and test counts, split (from split.json and a checkpoint)."""
    split = _read_json(out / "repeats" / "repeat_1" / "split.json")
    if split is None and not rows:
        return []
    meta = _checkpoint_meta(out)
    items = [("store", config.get("data") or "the built-in PTB-XL sample"), ("task", str(config.get("task")))]
    if split:
        parts = ("train", "validation", "test", "pretraining_pool")
        items.append(("records (repeat 1)", ", ".join(f"{p.replace('_', ' ')} {len(split[p])}" for p in parts
                                                      if isinstance(split.get(p), list))))
        items.append(("split", f"{split.get('description', split.get('strategy'))}; repeats: {config.get('repeats')}"))
    if meta:
        items += [("leads", f"{len(meta.get('leads', []))}: {' '.join(map(str, meta.get('leads', [])))}"),
                  ("fs", f"{meta.get('fs')} Hz, {meta.get('length')} samples per record"),
                  ("classes", ", ".join(map(str, meta.get("class_names", []))))]
    first = next((r for r in rows if r.get("per_class")), None)
    if first:
        items.append(("test records, positives per class (repeat 1)", f"{first.get('test_records')}; " + ", ".join(
            f"{c} {v.get('positives')}" for c, v in first["per_class"].items())))
    return items


def _checkpoint_meta(out: Path) -> dict[str, Any]:
    """The metadata (leads, fs, classes) of the run's first fine-tuned checkpoint; empty when there is none."""
    found = sorted((out / "repeats").glob("repeat_*/labels_*/*.best.pt"))
    if not found:
        return {}
    from ecgcl.engine.checkpoint import load_checkpoint

    try:
        return load_checkpoint(found[0]).get("meta", {})
    except EcgclError:
        return {}


def _tables(out: Path, rows: list[dict[str, Any]], summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every result table: test metrics, paired differences, units, per class, robustness, grid."""
    from ecgcl.methods import short_label
    from ecgcl.protocol.results import interval_label, method_rows, paired_rows, row_interval

    tables = []
    metrics = [m for m in METRIC_NAMES if any(f"{m}_mean" in r for r in summary)]
    if method_rows(summary):
        tables.append(_table("Test metrics (mean [95% CI] over repeats)", "summary.csv",
                             ["label fraction", "method", "repeats", *metrics],
                             [[r["label_fraction"], short_label(r["method"]), r.get("repeats"),
                               *(interval_label(*row_interval(r, m)) for m in metrics)] for r in method_rows(summary)]))
    if paired_rows(summary):
        tables.append(_table("Paired differences (mean ± 95% CI half-width; p)", "summary.csv",
                             ["label fraction", "method", "baseline", *metrics],
                             [[r["label_fraction"], short_label(r["method"]), short_label(r["baseline"]),
                               *(interval_label(*row_interval(r, m, True), difference=True)
                                 + (f" (p {_number(r.get(f'{m}_p'))})" if r.get(f"{m}_p") is not None else "")
                                 for m in metrics)] for r in paired_rows(summary)]))
    if rows:
        keys = [k for k in rows[0] if k not in ("history", "fingerprint", "per_class", "checkpoint")]
        tables.append(_table("Units: one row per repeat, label fraction and method (with how each stopped)",
                             "metrics.csv", keys, [[r.get(k) for k in keys] for r in rows]))
        per_class = [[r.get("repeat", 0) + 1, r.get("label_fraction"), short_label(r["method"]), name,
                      *(v.get(m) for m in CLASS_METRICS)] for r in rows for name, v in (r.get("per_class") or {}).items()]
        if per_class:
            tables.append(_table("Per class (test)", "metrics.json",
                                 ["repeat", "label fraction", "method", "class", *CLASS_METRICS], per_class))
    for name, title in (("robustness", "Robustness (test records under perturbations)"), ("grid", "Grid")):
        data = _read_json(out / f"{name}.json")
        data = data.get("summary") if isinstance(data, dict) else data
        if data:
            keys = list(dict.fromkeys(k for r in data for k in r))
            tables.append(_table(title, f"{name}.csv", keys, [[r.get(k) for k in keys] for r in data]))
    return tables


def _table(title: str, source: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "source": source, "columns": columns, "rows": [[_number(v) for v in r] for r in rows]}


def _images(out: Path) -> list[dict[str, str]]:
    """Every PNG of the folder, inlined (base64 data URI), with its relative link."""
    return [{"name": p.name, "src": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")}
            for p in sorted(out.glob("*.png"))]
