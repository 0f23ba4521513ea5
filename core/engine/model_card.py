"""The model card (`README.md`) of an exported model, in the Hugging Face Hub's layout (YAML front matter, then
what the model is, how it was trained, on what data, how to use it, its results and limitations)."""

from __future__ import annotations

from typing import Any

KNOWN_LICENCES = {"ptb-xl": "CC BY 4.0 (PTB-XL, Wagner et al., Scientific Data 2020; PhysioNet)",
                  "code-15": "CC BY 4.0 (CODE-15%, Ribeiro et al., Nature Communications 2020; Zenodo)",
                  "mimic-iv-ecg": "PhysioNet Credentialed Health Data License 1.5.0 (MIMIC-IV-ECG; do not share "
                                  "models trained on it without checking the licence's terms)"}


def model_card(config: dict[str, Any], results: list[dict[str, Any]] | None = None) -> str:
    """Markdown text of the model card of an export `config` (and the run's summary rows, if any)."""
    meta = config["meta"]
    source = str(meta.get("preprocessing", {}).get("source", "unknown"))
    licence = next((text for key, text in KNOWN_LICENCES.items() if key in source.lower().replace("_", "-")),
                   "not recorded: state the licence of the training data before sharing this model")
    kind = config["kind"]
    lines = [
        "---", "library_name: ecgcl", "tags: [ecg, electrocardiogram, self-supervised]", "---", "",
        f"# ecgcl {meta.get('encoder')} {'classifier' if kind == 'classifier' else 'encoder'}", "",
        f"An ECG {'classifier' if kind == 'classifier' else 'encoder'} trained with ecgcl "
        f"{config.get('ecgcl_version', '')}: `{meta.get('encoder')}` with arguments {meta.get('encoder_args', {})}, "
        f"{meta.get('embed_dim')}-dimensional embeddings of {len(meta.get('leads', []))}-lead ECGs "
        f"({', '.join(meta.get('leads', []))}) at {meta.get('fs'):g} Hz, {meta.get('length')} samples "
        f"({meta.get('length', 0) / float(meta.get('fs') or 1):g} s), input `{meta.get('representation')}`.", "",
        "## Training", "",
        f"- pretraining objective: `{meta.get('objective', 'none (supervised)')}`; augmentation: "
        f"`{meta.get('pretrain_aug', meta.get('aug'))}`; loss: `{meta.get('loss')}`",
        f"- data: {source}; {meta.get('pool_records', 'an unrecorded number of')} records in the pretraining pool",
        f"- data licence: {licence}",
    ]
    if kind == "classifier":
        lines.append(f"- task: `{meta.get('task')}` ({meta.get('target_kind')}), classes "
                     f"{', '.join(map(str, meta.get('class_names', [])))}")
    lines += ["", "## Intended use", "",
              "Research on ECG representation learning: embedding ECGs for linear probes, clustering or retrieval, "
              "and fine-tuning on a downstream task. Not a medical device; not for diagnosis or any clinical "
              "decision.", "", "## How to use", "", "```python", "import ecgcl", "",
              'encoder = ecgcl.load_encoder("path/to/this/folder")  # or "hf://ORG/NAME"',
              "z = encoder.embed(signals, fs=500, leads=lead_names)  # (N, leads, samples) in mV -> (N, embed_dim)",
              "```", "",
              "Signals at any rate and lead order are resampled and mapped by lead name as `ecgcl ingest` does; "
              "`ecgcl finetune --checkpoint FOLDER` fine-tunes it.", ""]
    if results:
        lines += ["## Results", "", "Test metrics of the run that trained it (mean and 95% CI over its repeats):", "",
                  "| method | label fraction | AUROC | repeats |", "| --- | --- | --- | --- |"]
        for row in results:
            if row.get("baseline") is None and row.get("auroc_mean") is not None:
                lines.append(f"| {row.get('method')} | {row.get('label_fraction', 1):g} | {_number(row['auroc_mean'])} "
                             f"[{_number(row.get('auroc_ci_low'))}, {_number(row.get('auroc_ci_high'))}] | "
                             f"{row.get('repeats', '')} |")
        lines.append("")
    lines += ["## Limitations", "",
              f"Trained on one collection ({source}); performance on other devices, populations, sampling rates and "
              "lead sets is unknown until measured. Inputs must be in mV; records shorter than "
              f"{meta.get('length', 0) / float(meta.get('fs') or 1):g} s are refused unless zero-padded.", ""]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
