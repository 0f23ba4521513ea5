"""Contract checks: every chosen component meets its interface on one dummy batch before training starts.

An encoder must return finite `(B, embed_dim)` values, an augmentation must keep the batch size, leads and
dtype (and the length, unless its `output_shape` says otherwise) and return finite values, a loss must return
a finite scalar. A violation, or an exception a third-party component raises (here or later in training), is
one line naming the component, its plugin and distribution: the user learns whose code to look at instead
of reading a traceback from deep inside the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from ecgcl.errors import EcgclError


class ContractError(EcgclError):
    """A component broke its interface's contract."""


def describe_component(component) -> str:
    """`encoder 'gap_cnn' (plugin 'example' of ecgcl-example-plugin 0.2.0)`."""
    source = component.source
    plugin = f"plugin {source.plugin!r} of " if getattr(source, "plugin", "") else ""
    return f"{component.kind} {component.name!r} ({plugin}{source.name} {source.version})".replace(" )", ")")


def plugin_failure(component, what: str, error: BaseException) -> EcgclError:
    """The one-line error for an exception raised inside a component's own code."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return EcgclError(f"{describe_component(component)} {what}: {type(error).__name__}"
                      f"{': ' + message if message else ''}")


def _violation(component, message: str) -> ContractError:
    return ContractError(f"{describe_component(component)} {message}")


def _check_finite(component, value: Tensor, what: str) -> None:
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise _violation(component, f"returned non-finite values (NaN or inf) {what}")


def _call(component, what: str, function, *args, **kwargs):
    """Call a component on the dummy input; any exception (a plugin's bug, or options that cannot work on
    this data, such as a kernel longer than the record) becomes one line naming the component."""
    try:
        return function(*args, **kwargs)
    except EcgclError:
        raise
    except Exception as error:
        raise plugin_failure(component, what, error) from error


def check_augmentation(compose, batch: Tensor, generator: torch.Generator) -> int:
    """Run each part of an augmentation `Compose` on `batch` (as training would) and return the view length."""
    x = batch
    for part, component in zip(compose.parts, compose.components):
        shape = tuple(x.shape)
        expected = tuple(part.output_shape(shape)) if hasattr(part, "output_shape") else shape
        pairs = getattr(part, "pairs_views", False)
        outputs = _call(component, f"failed on a batch of shape {shape}",
                        part.views if pairs else part, x, generator)
        for out in (outputs if pairs else (outputs,)):
            if not isinstance(out, Tensor):
                raise _violation(component, f"returned a {type(out).__name__}; expected a tensor of shape {expected}")
            if tuple(out.shape) != expected or out.shape[:2] != x.shape[:2] or out.shape[2] > x.shape[2]:
                raise _violation(component, f"returned shape {tuple(out.shape)} for a batch of shape {shape}; "
                                            f"expected {expected} (the same batch size and leads, never longer)")
            if out.dtype != x.dtype:
                raise _violation(component, f"returned {out.dtype} for a {x.dtype} batch; expected the same dtype")
            _check_finite(component, out, f"for a finite batch of shape {shape}")
        x = outputs[0] if pairs else outputs
    return int(x.shape[2])


def check_encoder(encoder, component, batch: Tensor) -> None:
    """The encoder maps `batch` (its input representation) to finite `(B, encoder.embed_dim)` values."""
    embed_dim = getattr(encoder, "embed_dim", None)
    if not isinstance(embed_dim, int):
        raise _violation(component, "has no integer attribute embed_dim (the size of its output)")
    shape = tuple(batch.shape)
    with torch.no_grad():
        out = _call(component, f"failed on a batch of shape {shape}", encoder, batch)
    if not isinstance(out, Tensor) or tuple(out.shape) != (shape[0], embed_dim):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise _violation(component, f"returned {got} for a batch of shape {shape}; expected ({shape[0]}, {embed_dim}) "
                                    "(batch, embed_dim)")
    _check_finite(component, out, f"for a finite batch of shape {shape}")


def check_loss(loss_fn, component, batch_size: int, dim: int, device: Any) -> None:
    """The loss of two `(batch_size, dim)` embeddings (with distinct patient ids) is a finite scalar."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    z1, z2 = (torch.randn(batch_size, dim, generator=generator).to(device) for _ in range(2))
    patients = torch.arange(batch_size, device=device)
    with torch.no_grad():
        out = _call(component, f"failed on embeddings of shape {(batch_size, dim)}", loss_fn, z1, z2,
                    patient_ids=patients)
    if not isinstance(out, Tensor) or out.dim() != 0:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
        raise _violation(component, f"returned {got}; expected a scalar tensor")
    _check_finite(component, out, f"for finite embeddings of shape {(batch_size, dim)}")


def check_objective(step_module, component, encoder, batch: Tensor, patient_ids: Tensor,
                    generator: torch.Generator) -> None:
    """One training step of an objective on real records: a finite scalar loss whose gradients reach the
    encoder (gradients are cleared afterwards; `step_module` is a throw-away `PretrainStep`). It runs the encoder,
    augmentation and objective together, so the caller wraps it in `blame_plugins` to name whichever raised."""
    shape = tuple(batch.shape)
    step_module.train()
    out = step_module(batch, patient_ids, generator)
    if not isinstance(out, Tensor) or out.dim() != 0:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
        raise _violation(component, f"returned {got} as the loss of a batch of shape {shape}; expected a scalar tensor")
    _check_finite(component, out, f"as the loss of a finite batch of shape {shape}")
    out.backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    reached = any(g is not None and bool(torch.isfinite(g).all()) and bool(g.abs().sum() > 0) for g in grads)
    step_module.zero_grad(set_to_none=True)
    if not reached:
        raise _violation(component, "gives a loss whose gradients do not reach the encoder (nothing would pretrain)")


@contextmanager
def blame_plugins(components: Sequence) -> Iterator[None]:
    """Turn an exception raised inside a third-party component's code into one line naming its plugin.

    Exceptions from ecgcl's own code (bugs) and user mistakes (`EcgclError`) pass through unchanged.
    """
    try:
        yield
    except EcgclError:
        raise
    except Exception as error:
        culprit = _culprit(error, [c for c in components if c is not None and c.source.name != "ecgcl"])
        if culprit is None:
            raise
        raise plugin_failure(culprit, "failed during training", error) from error


def _culprit(error: BaseException, components: Sequence):
    """The component whose code raised `error`: the innermost traceback frame inside one of the components'
    classes (or, failing that, their packages) decides."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "") or ""
        qualname = getattr(tb.tb_frame.f_code, "co_qualname", "")
        exact = [c for c in components if getattr(c.factory, "__module__", None) == module
                 and qualname.startswith(getattr(c.factory, "__qualname__", "") + ".")]
        same_package = [c for c in components
                        if (getattr(c.factory, "__module__", "") or "").split(".")[0] == module.split(".")[0]]
        if exact or same_package:
            found = (exact or same_package)[0]
        tb = tb.tb_next
    return found


__all__ = ["ContractError", "blame_plugins", "check_augmentation", "check_encoder", "check_loss",
           "describe_component", "plugin_failure"]
