"""Reading shareable models: the layout of an `ecgcl export` folder, and that folder (or `hf://ORG/NAME`, through
`huggingface_hub`: `pip install 'ecgcl[hub]'`) read back into the contents of a checkpoint. A folder whose encoder
no installed plugin registers names the distribution to install.

Apart from the writer (`ecgcl.engine.export`), which loads checkpoints, so that
`ecgcl.engine.checkpoint.load_checkpoint` can open an export folder without an import circle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ecgcl.engine.weights_fit import WEIGHT_KEYS as MODEL_WEIGHTS, not_safetensors
from ecgcl.errors import EcgclError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
EXPORT_FORMAT = "ecgcl-export-1"
WEIGHT_KEYS = {kind: MODEL_WEIGHTS[kind] for kind in ("encoder", "pretrain", "classifier")}  # what an export holds
HUB_PREFIX = "hf://"


def is_exported(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder in the export layout (it has a config.json)."""
    return Path(path).is_dir() and (Path(path) / CONFIG_FILE).is_file()


def resolve_model(path_or_id: str | os.PathLike) -> Path:
    """A local path for a checkpoint file, an exported folder, or `hf://ORG/NAME[@REVISION]` (downloaded, or
    taken from the local Hugging Face cache when offline)."""
    text = os.fspath(path_or_id)
    if not text.startswith(HUB_PREFIX):
        return Path(text)
    repo, _, revision = text[len(HUB_PREFIX):].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise EcgclError(f"{text}: expected hf://ORG/NAME (optionally @REVISION)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise EcgclError(f"{text}: loading from the Hugging Face Hub needs huggingface_hub: pip install "
                         "'ecgcl[hub]'") from None
    try:
        return Path(snapshot_download(repo, revision=revision or None,
                                      allow_patterns=[WEIGHTS_FILE, CONFIG_FILE, CARD_FILE]))
    except Exception as error:  # noqa: BLE001  (offline, unknown repository, no access: one line)
        raise EcgclError(f"{text}: cannot fetch from the Hugging Face Hub or its local cache "
                         f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None


def read_exported(folder: str | os.PathLike, registry=None) -> dict[str, Any]:
    """The checkpoint contents of an export folder: `{"kind", "meta", "encoder" | "model", "exported"}` (what
    `ecgcl.engine.checkpoint.load_checkpoint` returns for it, less the format tag); EcgclError (one line)
    for a missing or foreign weight file, a config that is not ecgcl's, or an encoder no plugin registers."""
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise EcgclError(f"{folder / CONFIG_FILE} cannot be read: {error}") from None
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        raise EcgclError(f"{folder} is not an ecgcl export (its config.json has no format {EXPORT_FORMAT!r})")
    if not isinstance(config.get("kind"), str) or config["kind"] not in WEIGHT_KEYS:
        raise EcgclError(f"{folder / CONFIG_FILE}: field kind is {config.get('kind')!r}; expected one of "
                         f"{', '.join(WEIGHT_KEYS)}")
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise EcgclError(f"{folder} has no {WEIGHTS_FILE}; an ecgcl export holds its weights there")
    from ecgcl.engine.model_schema import validate_meta
    from ecgcl.engine.weights_fit import check_weights_fit, safetensors_shapes

    meta = validate_meta(config.get("meta"), kind=config["kind"], source=str(folder / CONFIG_FILE))
    if registry is not None and ("encoder", meta.get("encoder")) not in registry:
        origin = config.get("encoder_distribution") if isinstance(config.get("encoder_distribution"), dict) else {}
        hint = f"pip install {origin['name']}" if origin.get("name") not in (None, "ecgcl") else "a newer ecgcl"
        raise EcgclError(f"{folder} needs encoder {meta.get('encoder')!r}, which no installed plugin provides "
                         f"(it came from {origin.get('name', 'an unknown distribution')} "
                         f"{origin.get('version', '')}; install it: {hint})")
    if registry is not None:  # the model the config describes against the weights' header, before loading them
        check_weights_fit(meta, safetensors_shapes(weights_path), registry, kind=config["kind"], where=str(folder),
                          config=CONFIG_FILE, weights_name=WEIGHTS_FILE)
    weights = load_weights(weights_path)
    return {"kind": config["kind"], "meta": meta, WEIGHT_KEYS[config["kind"]]: weights, "exported": str(folder)}


def load_weights(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file; EcgclError for anything else (a pickle, a truncated file)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as error:  # noqa: BLE001  (safetensors raises its own errors for foreign bytes)
        raise not_safetensors(path, error) from None
