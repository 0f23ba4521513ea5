"""The evaluation methods of the protocol (`--methods`), declared once: names, labels, what each starts from
and how it trains, and which pairs of methods are compared per repeat.

They are the evaluation arms of a run, not pretraining objectives: the pretrained encoder fine-tuned end to
end and probed linearly, and the two baselines every table needs to say what pretraining adds, a linear probe
on a randomly initialised encoder (which matches many published self-supervised results, arXiv 2602.17531)
and supervised training from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecgcl.errors import EcgclError, did_you_mean

FINETUNE_MODES = ("finetune", "linear")  # end to end, or a linear probe on the frozen encoder


@dataclass(frozen=True)
class Method:
    """One evaluation arm: `pretrained` (starts from the pretrained encoder) and `mode` (one of FINETUNE_MODES)."""

    name: str
    label: str  # legends and long text
    short: str  # table columns
    pretrained: bool
    mode: str

    @property
    def linear(self) -> bool:
        return self.mode == "linear"


METHOD_TABLE = (
    Method("pretrained_finetune", "pretrained, fine-tuned", "pretrained FT", True, "finetune"),
    Method("pretrained_linear", "pretrained, linear probe", "pretrained LP", True, "linear"),
    Method("random_linear", "random init, linear probe", "random-init LP", False, "linear"),
    Method("supervised", "supervised from scratch", "supervised", False, "finetune"),
)
METHODS = tuple(m.name for m in METHOD_TABLE)
BY_NAME = {m.name: m for m in METHOD_TABLE}

# (method, baseline) pairs compared per repeat on the same test patients, in table order
COMPARISONS = (
    ("pretrained_finetune", "supervised"),
    ("pretrained_linear", "supervised"),
    ("random_linear", "supervised"),
    ("pretrained_linear", "random_linear"),
)


def method(name: str) -> Method:
    """The declared method `name`; an EcgclError with a suggestion for an unknown one."""
    if name not in BY_NAME:
        raise EcgclError(f"unknown method {name!r}{did_you_mean(name, METHODS)}; choose from {', '.join(METHODS)}")
    return BY_NAME[name]


def method_for(mode: str, pretrained: bool) -> str:
    """The method that trains in `mode` from a pretrained encoder or from random initialisation."""
    return next(m.name for m in METHOD_TABLE if m.mode == mode and m.pretrained == pretrained)


def short_label(name: str) -> str:
    """A method's table label (the name itself for a method this version does not declare)."""
    return BY_NAME[name].short if name in BY_NAME else name
