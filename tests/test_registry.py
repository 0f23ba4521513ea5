"""The Registry: names, parameters from signatures, sources, duplicates, did-you-mean."""

import pytest

from ecgcl.errors import EcgclError, UnknownComponentError
from ecgcl.registry import DuplicateComponentError, Registry, Source


def scale(factor: float = 2.0, *, offset: int = 0):
    """Multiply by a factor."""
    return ("scale", factor, offset)


def needs(width: int):
    return width


def test_add_records_parameters_description_and_source():
    registry = Registry()
    registry.current_source = Source("dist-a", "1.2")
    component = registry.add("scale", scale, kind="augmentation", aliases=["times"])
    assert component.description == "Multiply by a factor."
    assert [p.describe() for p in component.parameters] == ["factor=2.0", "offset=0"]
    assert component.source == Source("dist-a", "1.2")
    assert registry.get("augmentation", "times") is component
    assert registry.create("augmentation", "scale", factor=3.0) == ("scale", 3.0, 0)
    assert component.as_dict()["parameters"][0] == {"name": "factor", "required": False, "default": 2.0,
                                                    "annotation": "float", "runtime": False}


def test_duplicate_names_the_two_sources():
    registry = Registry()
    registry.current_source = Source("dist-a", "1")
    registry.add("scale", scale, kind="augmentation")
    registry.current_source = Source("dist-b", "2")
    with pytest.raises(DuplicateComponentError, match="dist-b.*dist-a"):
        registry.add("scale", scale, kind="augmentation")
    registry.add("scale", scale, kind="encoder")  # another kind is another namespace


@pytest.mark.parametrize("name", ["Scale", "1x", "a-b", ""])
def test_bad_names_are_refused(name):
    with pytest.raises(EcgclError, match="names must match"):
        Registry().add(name, scale, kind="augmentation")


def test_unknown_kind_is_refused():
    with pytest.raises(EcgclError, match="kind must be one of"):
        Registry().add("scale", scale, kind="model")


def test_unknown_name_and_option_suggest_the_closest():
    registry = Registry()
    registry.add("scale", scale, kind="augmentation")
    with pytest.raises(UnknownComponentError, match="did you mean 'scale'"):
        registry.get("augmentation", "scael")
    with pytest.raises(EcgclError, match="no option 'factr'.*did you mean 'factor'"):
        registry.create("augmentation", "scale", factr=1)
    registry.add("needs", needs, kind="encoder")
    with pytest.raises(EcgclError, match="needs option.*width"):
        registry.create("encoder", "needs")


def test_components_filter_by_kind_and_glob_and_remove_source():
    registry = Registry()
    registry.current_source = Source("a", "1")
    registry.add("cnn", scale, kind="encoder")
    registry.add("cnn_lstm", scale, kind="encoder")
    registry.current_source = Source("b", "1")
    registry.add("noise", scale, kind="augmentation")
    assert [c.name for c in registry.components("encoder", "cnn*")] == ["cnn", "cnn_lstm"]
    assert [c.name for c in registry.components(pattern="*o*")] == ["noise"]
    registry.remove_source("a")
    assert registry.names() == ["noise"]
