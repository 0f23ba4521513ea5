"""Tune every objective on validation with the same budget, then ask whether pretraining helps: LP and fine-tuning
against random-init LP and supervised training, on the fully labelled PTB-XL pool, at 5%, 10% and 100% labels.

1. Tune: each built-in objective with its natural encoder (`cnn` width 16 depth 3 for contrastive, byol, vicreg,
   cpc; `patch_transformer` for masked and jepa) gets the same budget through `ecgcl.tune`: `--trials` trials or
   `--tune-seconds`, whichever ends first, `--epochs` pretraining epochs, median pruning on the per-epoch validation
   k-NN AUROC. Trials split by the official folds (`ptbxl-folds`): pretraining on folds 1-8, scored on fold 9
   (validation); fold 10 (test) is never read. The space of each objective is in SPACES below.
2. Evaluate: each tuned config through `ecgcl run` in two settings, official folds (5 training seeds) and 5 random
   patient-level repeats, at label fractions 5%, 10%, 100%: the pretrained linear probe for all six, the fine-tuned
   encoder for the two best on validation; baselines with the same encoders, splits and label subsets (random-init
   LP, supervised from scratch); the untuned default of the winner and of `contrastive` (their default options
   with the same number of epochs) beside them. The random repeats' test patients lie in folds 1-9, whose labels the
   tuning's validation figure used (fold 9): a mild optimism that the official folds do not have.
3. Report: paired differences over the repeats (pretrained LP - random-init LP, fine-tuned - supervised), 95% t
   interval and paired t-test p; OUT/results.md, OUT/results.json and the label-efficiency plot
   OUT/label_efficiency.png.

    python benchmarks/tuned_objectives.py [--out /tmp/ecgcl-bench-tuned] [--resume]
    python benchmarks/tuned_objectives.py --report-only --out ...          # tables and plot from finished units

`--resume` skips finished tuning studies and reuses finished protocol units; one run takes about 2 hours on
2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objectives import ENCODERS, _cell  # noqa: E402  (one home for the encoders and the paired cell)

import ecgcl  # noqa: E402
from ecgcl.config import resolve_config  # noqa: E402
from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.manager import get_registry  # noqa: E402
from ecgcl.protocol.runner import run_protocol  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl-all"
SETTINGS = {"folds": {"split": "ptbxl-folds"}, "random": {"split": "random"}}
AUGS = ["permute+noise", "time_warp+noise+lead_mask", "clocs", "baseline_drift+zero_mask+noise"]
LR = {"low": 1e-4, "high": 3e-3, "log": True}
SPACES = {
    "contrastive": {"lr": LR, "aug": {"choices": AUGS}, "loss.temperature": {"low": 0.05, "high": 0.5, "log": True}},
    "byol": {"lr": LR, "aug": {"choices": AUGS}, "objective.momentum": {"low": 0.98, "high": 0.999}},
    "vicreg": {"lr": LR, "aug": {"choices": AUGS}, "objective.sim_weight": {"low": 5.0, "high": 50.0, "log": True}},
    "cpc": {"lr": LR, "objective.steps_ahead": {"low": 2, "high": 8}, "objective.context_dim": {"choices": [32, 64, 128]}},
    "masked": {"lr": LR, "objective.mask_ratio": {"low": 0.5, "high": 0.9},
               "objective.norm_target": {"choices": [True, False]}},
    "jepa": {"lr": LR, "objective.mask_ratio": {"low": 0.3, "high": 0.7}, "objective.blocks": {"low": 1, "high": 4}},
}
LP, FT, RANDOM_LP, SUPERVISED = "pretrained_linear", "pretrained_finetune", "random_linear", "supervised"


def _base(args, store: Path, objective: str) -> dict:
    encoder, encoder_args = ENCODERS[get_registry().get("objective", objective).factory_attribute("needs")]
    return {"data": str(store), "task": "superclasses", "objective": objective, "encoder": encoder,
            "encoder_args": encoder_args, "pretrain_epochs": args.epochs, "device": "cpu", "seed": 0}


def tune_all(args, store: Path, out: Path) -> dict[str, dict]:
    """Tune each objective (skipping finished studies under --resume); its summary lands in OUT/tune/NAME."""
    summaries = {}
    for name in args.objectives:
        folder = out / "tune" / name
        summary_file = folder / "summary.json"
        if args.resume and summary_file.exists():
            summaries[name] = json.loads(summary_file.read_text())
            continue
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted study restarts with its whole budget
        started = time.perf_counter()
        result = ecgcl.tune(SPACES[name], trials=args.trials, timeout=args.tune_seconds, out=str(folder),
                            split="ptbxl-folds", repeats=1, **_base(args, store, name))
        states = [row["state"] for row in result.trials]
        summaries[name] = {"best_value": result.best_value, "best_params": result.best_params,
                           "best_toml": str(result.files["best.toml"]), "seconds": time.perf_counter() - started,
                           "trials": len(states), "pruned": states.count("PRUNED"),
                           "complete": states.count("COMPLETE")}
        summary_file.write_text(json.dumps(summaries[name], indent=2))
        print(f"tuned {name}: validation k-NN AUROC {result.best_value:.4f} with {result.best_params} "
              f"({len(states)} trials, {states.count('PRUNED')} pruned, {summaries[name]['seconds']:.0f} s)",
              flush=True)
    return summaries


def _protocol(args, out: Path, setting: str, values: dict, methods: list[str]) -> dict:
    config = resolve_config(None, {**values, **SETTINGS[setting], "repeats": args.repeats, "methods": methods,
                                   "label_fractions": args.label_fractions, "monitors": ["none"],
                                   "out": str(out), "device": "cpu"})
    started = time.perf_counter()
    result = run_protocol(config, overwrite=not args.resume)
    print(f"  {setting} {out.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return {f"{r['repeat']}|{r['label_fraction']}|{r['method']}": r["auroc"] for r in result.rows}


def _tuned_values(summary: dict) -> dict:
    import tomllib

    values = tomllib.loads(Path(summary["best_toml"]).read_text())
    return {k: v for k, v in values.items() if k not in ("out", "monitors", "monitor_every", "pretrain_select")}


def evaluate(args, store: Path, out: Path, summaries: dict) -> dict:
    """Every arm in both settings; the best two on validation also fine-tuned. Returns arm -> setting -> scores.
    Arms run in order of what the target needs first (the cnn baselines, the best two, the untuned defaults),
    each in both settings, so an interrupted run has whole comparisons."""
    ranked = sorted(summaries, key=lambda n: summaries[n]["best_value"], reverse=True)
    finetuned = ranked[:2]
    plan = []  # (arm, folder, values, methods)
    for encoder in sorted({encoder_of(n) for n in ranked}, key=lambda e: e != encoder_of(ranked[0])):
        values = _base(args, store, next(n for n in ranked if encoder_of(n) == encoder))
        methods = [RANDOM_LP] + ([SUPERVISED] if any(encoder_of(n) == encoder for n in finetuned) else [])
        plan.append((f"baselines:{encoder}", f"baselines-{encoder}",
                     {**values, "objective": "contrastive", "aug": None, "pretrain_epochs": 0}, methods))
    for name in finetuned:
        plan.append((f"tuned:{name}", f"tuned-{name}", _tuned_values(summaries[name]), [LP, FT]))
    for name in dict.fromkeys([ranked[0], "contrastive"]):
        if name in summaries:
            plan.append((f"default:{name}", f"default-{name}", _base(args, store, name), [LP]))
    for name in ranked[2:]:
        plan.append((f"tuned:{name}", f"tuned-{name}", _tuned_values(summaries[name]), [LP]))
    arms: dict[str, dict] = {}
    for arm, folder, values, methods in plan:
        for setting in args.settings:
            arms.setdefault(arm, {})[setting] = _protocol(args, out / "eval" / setting / folder, setting, values,
                                                          methods)
        print(f"done {arm}", flush=True)
    return {"arms": arms, "ranked": ranked, "finetuned": finetuned}


def _scores(scores: dict, fraction: float, method: str) -> tuple[list[str], list[float]]:
    keys = sorted(k.split("|")[0] for k in scores if k.split("|")[1:] == [str(fraction), method])
    return keys, [scores[f"{r}|{fraction}|{method}"] for r in keys]


def report(args, out: Path, summaries: dict, evaluation: dict) -> str:
    """Markdown tables (one per setting) and the label-efficiency plot."""
    arms, lines = evaluation["arms"], []
    lines.append("| objective | encoder | tuned on validation (k-NN AUROC, fold 9) | trials (pruned) | tuning s |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name in evaluation["ranked"]:
        s = summaries[name]
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in s["best_params"].items())
        lines.append(f"| `{name}` | {encoder_of(name)} | {s['best_value']:.3f} ({params}) | {s['trials']} "
                     f"({s['pruned']}) | {s['seconds']:.0f} |")
    for setting in args.settings:
        lines += ["", f"**{setting}** ({'official folds, 5 seeds' if setting == 'folds' else '5 random patient-level repeats'};"
                  " test macro AUROC; paired differences: mean [95% CI] p)", "",
                  "| arm | labels | LP | rand LP | LP − rand LP | FT | sup | FT − sup |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for arm, by_setting in arms.items():
            if arm.startswith("baselines:") or setting not in by_setting:
                continue
            base = arms[f"baselines:{encoder_of(arm.split(':')[1])}"][setting]
            for fraction in args.label_fractions:
                keys, lp = _scores(by_setting[setting], fraction, LP)
                _, rlp = _scores(base, fraction, RANDOM_LP)
                ft_cells = "| | |"
                _, ft = _scores(by_setting[setting], fraction, FT)
                if ft:
                    _, sup = _scores(base, fraction, SUPERVISED)
                    ft_cells = f"{np.mean(ft):.3f} | {np.mean(sup):.3f} | {_cell(ft, sup)} |"
                lines.append(f"| {arm} | {fraction:g} | {np.mean(lp):.3f} | {np.mean(rlp):.3f} | {_cell(lp, rlp)} | "
                             f"{ft_cells}")
    lines += _tuning_bought(args, arms)
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"summaries": summaries, **evaluation}, indent=1))
    plot(args, out / "label_efficiency.png", evaluation)
    return text


def _tuning_bought(args, arms: dict) -> list[str]:
    """Tuned LP - untuned (default options, same epochs) LP of the same objective, paired over the same splits."""
    lines = ["", "**What tuning bought** (pretrained LP, tuned − untuned defaults, same splits and epochs)", "",
             "| objective | setting | labels | tuned LP | default LP | tuned − default |", "| --- | --- | --- | --- | --- | --- |"]
    for arm in arms:
        if not arm.startswith("default:") or f"tuned:{arm[8:]}" not in arms:
            continue
        for setting in args.settings:
            for fraction in args.label_fractions:
                _, default = _scores(arms[arm][setting], fraction, LP)
                _, tuned = _scores(arms[f"tuned:{arm[8:]}"][setting], fraction, LP)
                lines.append(f"| {arm[8:]} | {setting} | {fraction:g} | {np.mean(tuned):.3f} | {np.mean(default):.3f} | "
                             f"{_cell(tuned, default)} |")
    return lines


def encoder_of(name: str) -> str:
    return ENCODERS[get_registry().get("objective", name).factory_attribute("needs")][0]


def plot(args, path: Path, evaluation: dict) -> None:
    """Test AUROC against label fraction, one line per method, 95% t intervals over the repeats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    arms = evaluation["arms"]
    figure, axes = plt.subplots(1, len(args.settings), figsize=(5.5 * len(args.settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], args.settings):
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # more lines than tab10 has colours
        lines = [(f"random-init LP ({e})", arms[f"baselines:{e}"][setting], RANDOM_LP)
                 for e in sorted({encoder_of(n) for n in evaluation["ranked"]})]
        lines += [("supervised (cnn)", arms["baselines:cnn"][setting], SUPERVISED)] if evaluation["finetuned"] else []
        lines += [(f"{n} LP", arms[f"tuned:{n}"][setting], LP) for n in evaluation["ranked"]]
        lines += [(f"{n} FT", arms[f"tuned:{n}"][setting], FT) for n in evaluation["finetuned"]]
        for label, scores, method in lines:
            means, halves = [], []
            for fraction in args.label_fractions:
                _, values = _scores(scores, fraction, method)
                means.append(np.mean(values))
                halves.append(stats.sem(values) * stats.t.ppf(0.975, len(values) - 1) if len(values) > 1 else 0)
            style = "--" if "random" in label or "supervised" in label else "-"
            ax.errorbar(args.label_fractions, means, yerr=halves, label=label, linestyle=style, marker="o",
                        capsize=3)
        ax.set_xscale("log")
        ax.set_xticks(args.label_fractions, [f"{f:g}" for f in args.label_fractions])
        ax.set_xlabel("label fraction")
        ax.set_ylabel("test macro AUROC")
        ax.set_title(f"PTB-XL superclasses, {setting}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SHARED, help="The ptbxl-all folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ecgcl-bench-tuned"))
    parser.add_argument("--objectives", default=",".join(SPACES))
    parser.add_argument("--settings", default="folds,random")
    parser.add_argument("--trials", type=int, default=8, help="Most trials per objective")
    parser.add_argument("--tune-seconds", type=float, default=300, help="Most tuning seconds per objective")
    parser.add_argument("--epochs", type=int, default=10, help="Pretraining epochs (tuning and evaluation)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label-fractions", default="0.05,0.1,1.0")
    parser.add_argument("--resume", action="store_true", help="Skip finished studies, reuse finished units")
    parser.add_argument("--report-only", action="store_true", help="Tables and plot from OUT/results.json")
    args = parser.parse_args()
    args.objectives, args.settings = args.objectives.split(","), args.settings.split(",")
    args.label_fractions = [float(f) for f in args.label_fractions.split(",")]
    out = args.out
    if args.report_only:
        saved = json.loads((out / "results.json").read_text())
        summaries = saved.pop("summaries")
        print(report(args, out, summaries, saved))
        return
    store = out / "store"
    if not store.exists():
        ingest(args.source, store, fs=100)
    started = time.perf_counter()
    summaries = tune_all(args, store, out)
    tuned = time.perf_counter()
    evaluation = evaluate(args, store, out, summaries)
    evaluation["seconds"] = {"tuning": tuned - started, "evaluation": time.perf_counter() - tuned}
    print(report(args, out, summaries, evaluation))
    print(f"tuning {evaluation['seconds']['tuning']:.0f} s, evaluation {evaluation['seconds']['evaluation']:.0f} s")


if __name__ == "__main__":
    main()
