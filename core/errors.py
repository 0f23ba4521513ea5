"""Exceptions for user mistakes: the CLI turns each into a one-line message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EcgclError(Exception):
    """A mistake in the user's input (option, file, record): shown as one line, never as a traceback."""


class UnknownComponentError(EcgclError, KeyError):
    """A component name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginLoadError(EcgclError):
    """A third-party plugin failed to load (raised only with ECGCL_STRICT_PLUGINS=1)."""


def require_positive_ints(owner: str, **sizes: object) -> None:
    """EcgclError `"{owner}: {name} must be a positive integer, got {value!r}"` for the first size (in the order
    given) that is not an int >= 1 (a bool is not a size); the one wording of that check across components."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EcgclError(f"{owner}: {name} must be a positive integer, got {value!r}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
