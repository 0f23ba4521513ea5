"""Whether a model's metadata and its weights describe the same network, decided before real memory is used.

A config that someone else wrote can ask for any size (`width` 10^6 allocates terabytes), so the model it
describes is first built on PyTorch's `meta` device (shapes, no storage) and its parameter names and shapes are
compared with the weights: the safetensors header (read without loading a tensor) or a checkpoint's state dict.
Integer sizes are bounded by the weights before that build, so a huge `depth` cannot make even the shapes
costly. Any mismatch is one `EcgclError` line that names the file and, where it can tell, the field
(`meta.encoder_args.width 4096 in config.json, but the weights hold 16`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ecgcl.engine.model_schema import validate_meta
from ecgcl.errors import EcgclError

Shapes = dict[str, tuple[int, ...]]
CLASSIFIER_KINDS = ("classifier", "classifier-last")
# checkpoint kind -> where it keeps its model's weights: the encoder's, or the whole classifier's
WEIGHT_KEYS = {"encoder": "encoder", "pretrain": "encoder", "classifier": "model", "classifier-last": "model"}
MODEL_KINDS = tuple(WEIGHT_KEYS)


def safetensors_shapes(path: Path) -> Shapes:
    """Tensor name -> shape from a safetensors file's header alone (safetensors checks that the header's
    offsets cover the file exactly, so a truncated or padded file fails here, before any tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: tuple(int(n) for n in handle.get_slice(name).get_shape()) for name in handle.keys()}
    except Exception as error:  # noqa: BLE001  (safetensors raises its own error types for foreign bytes)
        raise not_safetensors(path, error) from None


def not_safetensors(path: Path, error: Exception) -> EcgclError:
    """The one line for a weights file safetensors refuses (a pickle, a truncated file, a foreign header)."""
    return EcgclError(f"{path} is not a safetensors weight file ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else 'unreadable'})")


def state_shapes(state: Any, *, source: str) -> Shapes:
    """Tensor name -> shape of a checkpoint's state dict; one line for an entry that is not a tensor."""
    import torch

    if not isinstance(state, Mapping):
        raise EcgclError(f"{source}: the weights are {type(state).__name__}, expected a table of tensors")
    shapes: Shapes = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise EcgclError(f"{source}: weight {str(name)[:60]!r} is {type(value).__name__}, expected a tensor")
        shapes[str(name)] = tuple(value.shape)
    return shapes


def _sizes(meta: dict[str, Any], prefix: str) -> Iterator[tuple[str, int]]:
    """(field, value) for every whole-number size the metadata sets: embed_dim and each integer encoder option."""
    yield f"{prefix}embed_dim", meta["embed_dim"]
    for key, value in meta["encoder_args"].items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, int) and not isinstance(item, bool):
                yield f"{prefix}encoder_args.{key}", item


def check_sizes_bounded(meta: dict[str, Any], shapes: Shapes, *, where: str, prefix: str = "meta.") -> None:
    """Refuse a size no weight file of this model could match: larger than every tensor dimension, the number of
    tensors and the record length together (a width appears in a shape, a depth counts tensors, a patch or
    stride fits in a record)."""
    largest = max((max(shape, default=1) for shape in shapes.values()), default=1)
    limit = max(largest, len(shapes), int(meta["length"]))
    for field, value in _sizes(meta, prefix):
        if value > limit:
            raise EcgclError(f"{where}: field {field} is {value:,}, but the weights hold no size above {largest:,} "
                             f"in {len(shapes)} tensors; expected the size the weights were trained with")


def model_on_meta(meta: dict[str, Any], registry, *, kind: str, source: str):
    """The module `meta` describes (the encoder, or the classifier around it), built on the `meta` device."""
    import torch

    from ecgcl.engine.model import Classifier, encoder_from_meta

    with torch.device("meta"):
        try:
            encoder = encoder_from_meta(meta, registry, source=source)
        except EcgclError as error:  # an option the encoder does not take, or a value it refuses
            raise EcgclError(f"{source}: field meta.encoder_args does not build encoder {meta['encoder']!r}: "
                             f"{error}") from None
        if kind not in CLASSIFIER_KINDS:
            return encoder
        return Classifier(encoder, meta["num_outputs"], window=meta["window"], representation=meta["representation"],
                          dropout=meta.get("dropout", 0.0), softmax=meta["target_kind"] == "multiclass")


def _blame(meta: dict[str, Any], expected: int, prefix: str) -> str | None:
    """The metadata field whose value is the size a mismatching shape was built from, if exactly one is."""
    fields = dict(_sizes(meta, prefix))
    fields[f"{prefix}leads"] = len(meta.get("encoder_leads") or meta["leads"])
    fields[f"{prefix}window"] = meta["window"]
    if "num_outputs" in meta:
        fields[f"{prefix}num_outputs"] = meta["num_outputs"]
    named = [field for field, value in fields.items() if value == expected]
    return named[0] if len(named) == 1 else None


def compare_shapes(model_shapes: Shapes, weights: Shapes, meta: dict[str, Any], *, where: str, config: str,
                   weights_name: str, prefix: str = "meta.") -> None:
    """One line for the first difference between the model's tensors and the weights' (names, then shapes)."""
    missing = [name for name in model_shapes if name not in weights]
    extra = [name for name in weights if name not in model_shapes]
    if missing:
        raise EcgclError(f"{where}: {weights_name} lacks {len(missing)} of the {len(model_shapes)} tensors of the "
                         f"model {config} describes (e.g. {missing[0]!r}); expected the weights of that model")
    if extra:
        raise EcgclError(f"{where}: {weights_name} holds {len(extra)} tensors the model {config} describes does not "
                         f"have (e.g. {extra[0]!r}); expected the weights of that model")
    for name, shape in model_shapes.items():
        held = weights[name]
        if shape == held:
            continue
        differing = [(e, h) for e, h in zip(shape, held) if e != h]
        field = _blame(meta, differing[0][0], prefix) if differing and len(shape) == len(held) else None
        detail = f"tensor {name!r} is {list(held)} in {weights_name}, {list(shape)} in the model"
        if field is not None:
            raise EcgclError(f"{where}: {field} {differing[0][0]} in {config}, but the weights hold "
                             f"{differing[0][1]} ({detail})")
        raise EcgclError(f"{where}: the model {config} describes does not fit its weights ({detail})")


def check_weights_fit(meta: dict[str, Any], weights: Shapes, registry, *, kind: str, where: str, config: str,
                      weights_name: str) -> None:
    """Validate `meta` (`ecgcl.engine.model_schema`), bound its sizes by the weights, build the model on the
    meta device and compare it with `weights` (name -> shape); EcgclError (one line) at the first problem.
    An encoder the registry lacks is left to the caller, which names the distribution to install."""
    validate_meta(meta, kind=kind, source=where)
    if ("encoder", meta["encoder"]) not in registry:
        return
    check_sizes_bounded(meta, weights, where=where)
    model = model_on_meta(meta, registry, kind=kind, source=where)
    model_shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    compare_shapes(model_shapes, weights, meta, where=where, config=config, weights_name=weights_name)


__all__ = ["CLASSIFIER_KINDS", "MODEL_KINDS", "check_sizes_bounded", "check_weights_fit", "compare_shapes",
           "model_on_meta", "not_safetensors", "safetensors_shapes", "state_shapes", "WEIGHT_KEYS"]
