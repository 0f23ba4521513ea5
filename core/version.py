"""The ecgcl version, in one place: a leaf every floor may import (`pyproject.toml` reads it from here too)."""

__version__ = "0.1.0"
