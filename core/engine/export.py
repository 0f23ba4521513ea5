"""Shareable models: a checkpoint written as a folder in the Hugging Face Hub layout, and uploaded there.

`export_checkpoint` writes `model.safetensors` (the weights only, in the safetensors format: no pickle, no code),
`config.json` (what rebuilds the model: encoder name and arguments, fs, leads, length, input representation,
pretraining objective and augmentation, a data summary, the ecgcl version and the distribution that provides
the encoder) and `README.md`, a model card. `ecgcl.engine.exported` reads such a folder (or `hf://ORG/NAME`)
back into the checkpoint dict every command takes, so `load_encoder`, `finetune --checkpoint`, `evaluate` and
`embed` accept a folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ecgcl.engine.exported import CARD_FILE, CONFIG_FILE, EXPORT_FORMAT, WEIGHT_KEYS, WEIGHTS_FILE, is_exported
from ecgcl.errors import EcgclError

PRIVATE_META = ("heldout_patients",)  # patient ids of the training split never leave the machine


def export_checkpoint(checkpoint: dict[str, Any], out: str | os.PathLike, *, source: str, registry,
                      results: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write `checkpoint` (a loaded ecgcl checkpoint) as an export folder at `out` (see the module docstring).

    The folder is written beside `out` and renamed into place, so a failure leaves nothing half-written; a failed
    write (no space, no permission) is one `EcgclError` line naming the file (`ecgcl.files.write_error`).
    `results` (the run's summary rows, when the checkpoint came from `ecgcl run`) go into the model card.
    """
    from safetensors.torch import save as save_safetensors

    from ecgcl.version import __version__
    from ecgcl.files import make_folders, write_error
    from ecgcl.engine.model_card import model_card

    kind = checkpoint.get("kind")
    if kind not in WEIGHT_KEYS:
        raise EcgclError(f"{source} is a {kind!r} checkpoint; export takes pretrain.pt, pretrain.last.pt or a "
                         "fine-tuned *.best.pt")
    out = Path(out)
    if out.exists() and not overwrite:
        raise EcgclError(f"output {out} already exists (choose another folder or pass --overwrite)")
    meta = {k: v for k, v in checkpoint["meta"].items() if k not in PRIVATE_META}
    source_info = meta.get("preprocessing", {})
    if "source" in source_info:
        meta["preprocessing"] = {**source_info, "source": Path(str(source_info["source"])).name}
    component = registry.get("encoder", meta["encoder"]) if ("encoder", meta["encoder"]) in registry else None
    config = {"format": EXPORT_FORMAT, "kind": "encoder" if kind == "pretrain" else kind, "ecgcl_version": __version__,
              "encoder_distribution": None if component is None else
              {"name": component.source.name, "version": component.source.version}, "meta": meta}
    weights = {k: v.detach().cpu().contiguous() for k, v in checkpoint[WEIGHT_KEYS[kind]].items()}
    # serialized here and written by Python, so a full disk is an OSError (save_file's own writer raises a
    # SafetensorError instead)
    files = [(WEIGHTS_FILE, "model weights", save_safetensors(weights, metadata={"format": EXPORT_FORMAT})),
             (CONFIG_FILE, "model config", (json.dumps(config, indent=2, default=str) + "\n").encode("utf-8")),
             (CARD_FILE, "model card", model_card(config, results).encode("utf-8"))]
    make_folders(out.parent, "export folder")
    staging, current = None, (out, "export folder")  # what a failure is about: the file being written, else OUT
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        for name, what, data in files:
            current = (out / name, what)
            (staging / name).write_bytes(data)
        current = (out, "export folder")
        umask = os.umask(0)
        os.umask(umask)
        for file in staging.iterdir():
            file.chmod(0o666 & ~umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp made it private; a shared model is meant to be read
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except OSError as error:  # no space, no permission: one line, the staged folder removed
        raise write_error(*current, error) from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def export_model(checkpoint_path: str | os.PathLike, out: str | os.PathLike, *, registry=None,
                 overwrite: bool = False) -> Path:
    """`ecgcl export`: load a checkpoint file, find the results of the run it came from (a `summary.json` in a
    folder above it, as `ecgcl run` writes), and write the export folder."""
    from ecgcl.engine.checkpoint import load_checkpoint

    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    path = Path(checkpoint_path)
    if is_exported(path):
        raise EcgclError(f"{path} is already an export folder")
    checkpoint = load_checkpoint(path, registry=registry)
    return export_checkpoint(checkpoint, out, source=f"checkpoint {path}", registry=registry,
                             results=run_results(path), overwrite=overwrite)


def run_results(checkpoint_path: Path, levels: int = 4) -> list[dict[str, Any]] | None:
    """The summary rows of the `ecgcl run` folder a checkpoint lies in (None when it came from elsewhere)."""
    for folder in list(Path(checkpoint_path).resolve().parents)[:levels]:
        summary = folder / "summary.json"
        if summary.is_file() and (folder / "config.json").is_file():
            try:
                rows = json.loads(summary.read_text())
            except (OSError, ValueError):
                return None
            return rows if isinstance(rows, list) else None
    return None


def push_to_hub(folder: Path, repo: str, *, private: bool = False) -> str:
    """Upload an export folder to the Hugging Face Hub repository `repo` (ORG/NAME); its URL."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise EcgclError("--push-to-hub needs huggingface_hub: pip install 'ecgcl[hub]'") from None
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise EcgclError(f"--push-to-hub {repo!r}: expected ORG/NAME")
    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message="ecgcl export")
    except Exception as error:  # noqa: BLE001  (no token, no network, no permission: one line)
        raise EcgclError(f"cannot upload {folder} to {repo} on the Hugging Face Hub: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''} (log in with `hf auth login` or set "
                         "HF_TOKEN)") from None
    return f"https://huggingface.co/{repo}"
