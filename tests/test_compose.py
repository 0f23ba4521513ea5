"""`ecgcl.compose`: parsing --aug strings, applying parts in order, drawing views."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ecgcl.compose import Compose, draw_views, parse_augmentations, parse_part, parse_value
from ecgcl.errors import EcgclError
from ecgcl.manager import create_plugin_manager
from ecgcl.plugins.augmentations import Clocs, Noise, Permute, TimeWarp, ZeroMask


@pytest.fixture(scope="module")
def registry():
    return create_plugin_manager(entry_points=False).registry


def batch(b: int = 4, leads: int = 12, length: int = 400) -> torch.Tensor:
    return torch.randn(b, leads, length, generator=torch.Generator().manual_seed(0))


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5), ("-3", -3), ("0.05", 0.05), ("1e-2", 0.01),
        ("true", True), ("False", False), ("none", None), ("lead", "lead"),
    ],
)
def test_values_are_read_as_int_float_bool_none_or_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_a_part_is_a_name_and_options():
    assert parse_part("time_warp:segments=6, stretch=0.1,mode=lead") == (
        "time_warp",
        {"segments": 6, "stretch": 0.1, "mode": "lead"},
    )
    assert parse_part("noise") == ("noise", {})


def test_parse_builds_the_parts_in_order_with_their_options(registry):
    compose = parse_augmentations("permute:segments=5+noise:std=0.05", registry)
    assert [type(p) for p in compose.parts] == [Permute, Noise]
    assert compose.parts[0].segments == 5 and compose.parts[1].std == 0.05
    assert compose.spec == "permute:segments=5+noise:std=0.05"
    plain = parse_augmentations("permute+noise", registry)
    assert plain.parts[0].segments == Permute().segments


@pytest.mark.parametrize("spec", ["", "none", "None", "  ", None])
def test_an_empty_spec_is_the_identity(registry, spec):
    compose = parse_augmentations(spec, registry)
    x = batch()
    assert len(compose) == 0 and torch.equal(compose(x, g()), x)
    first, second = compose.views(x, g())
    assert torch.equal(first, x) and torch.equal(second, x)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("permut+noise", "unknown augmentation 'permut' (did you mean 'permute'?)"),
        ("permute:segment=5", "has no option 'segment' (did you mean 'segments'?)"),
        ("noise:sdt=0.1", "did you mean 'std'?"),
        ("time_warp:segments=5", "'time_warp': segments must be even"),
        ("dropout:fraction=1.2", "'dropout': fraction must be in [0, 1)"),
        ("permute:mode=leads", "did you mean 'lead'"),
        ("permute:segments", "expected key=value"),
        ("permute++noise", "empty part"),
        ("permute:segments=4,segments=5", "given twice"),
        (":segments=4", "empty name"),
        ("clocs+clocs:strategy=cmlc", "only one part may form the two views"),
    ],
)
def test_mistakes_are_one_clear_error(registry, spec, message):
    with pytest.raises(EcgclError) as error:
        parse_augmentations(spec, registry)
    assert message in str(error.value)


def test_a_plugin_raising_value_error_becomes_an_ecgcl_error(registry):
    from ecgcl.registry import Registry

    def picky(level: int = 1):
        if level > 3:
            raise ValueError("level must be <= 3")
        return Noise()

    local = Registry()
    local.add("picky", picky, kind="augmentation")
    with pytest.raises(EcgclError, match=r"augmentation 'picky' \(unknown\): level must be <= 3"):
        parse_augmentations("picky:level=9", local)


def test_parts_are_applied_in_order_from_one_generator(registry):
    compose = parse_augmentations("permute:segments=4+zero_mask:fraction=0.2+noise:std=0.1", registry)
    x = batch()
    generator = g(5)
    expected = Noise(std=0.1)(ZeroMask(fraction=0.2)(Permute(segments=4)(x, generator), generator), generator)
    assert torch.equal(compose(x, g(5)), expected)


def test_views_are_two_independent_draws_and_reproducible(registry):
    compose = parse_augmentations("time_warp+dropout", registry)
    x = batch()
    first, second = draw_views(compose, x, g(1))
    assert first.shape == second.shape == x.shape and not torch.equal(first, second)
    again = compose.views(x, g(1))
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])


def test_clocs_pairs_the_views_after_the_shared_parts(registry):
    compose = parse_augmentations("zero_mask:fraction=0.2+clocs:strategy=cmlc", registry)
    assert compose.pairs_views
    x = batch()
    first, second = compose.views(x, g(2))
    shared = ZeroMask(fraction=0.2)(x, g(2))  # drawn once, before the pair is formed
    assert torch.equal(first + second, shared)


def test_parts_after_clocs_are_drawn_per_view_and_shapes_follow(registry):
    compose = parse_augmentations("clocs+noise:std=0.1", registry)
    x = batch(length=400)
    assert compose.output_shape(tuple(x.shape)) == (4, 12, 200)
    first, second = compose.views(x, g(3))
    assert first.shape == second.shape == (4, 12, 200)
    clean_first, clean_second = Clocs().views(x, g(3))
    assert not torch.equal(first, clean_first) and not torch.equal(second, clean_second)
    assert torch.allclose(first, clean_first, atol=1.0) and torch.allclose(second, clean_second, atol=1.0)


def test_compose_nests_like_any_augmentation():
    inner = Compose([Permute(segments=3), TimeWarp()])
    outer = Compose([inner, Noise(std=0.0)])
    x = batch()
    assert torch.equal(outer(x, g(4)), inner(x, g(4)))
    assert repr(outer) == "Compose('compose+noise')"


def test_the_cli_parameter_types_do_not_import_torch():
    code = "import sys; import ecgcl.cli.params; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
