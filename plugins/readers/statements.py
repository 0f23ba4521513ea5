"""Interpretation statements as a store keeps them: the diagnostic text only, identity removed.

Carts and ECG management systems append who confirmed or read the tracing to the statements ("Confirmed by
SMITH, JOHN (123) on 3/4/2021"), mention earlier tracings by date, and may write free text. A store needs the
diagnosis ("SINUS RHYTHM", "NORMAL ECG"), so each statement is cut at the first attribution (confirmed, read,
reviewed ... by; Dr; MD; physician; technician), dates, times and long numbers are removed, and what remains
is kept when it still holds words. Statements become labels with `--statements-as-labels`, so `;` (the label
separator) is replaced by `,`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ATTRIBUTION = re.compile(
    r"(?i)(\b(confirmed|reviewed|read|over-?read|interpreted|signed|edited|verified|approved|referred|requested|"
    r"ordered|acquired|entered)\s+(by|on)\b|\bdr\b\.?|\bm\.?\s?d\b\.?|\bphysician\b|\btechnician\b|\bnurse\b|"
    r"\bpatient\b|\bname\b|\bmrn\b|\bborn\b|\bdob\b)")
_DATES = re.compile(r"(?i)\b\d{1,4}[-/.](\d{1,2}|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[-/.]\d{2,4}\b"
                    r"|\b\d{1,2}:\d{2}(:\d{2})?\b|\b\d{5,}\b")
_WORD = re.compile(r"[A-Za-z]{2,}")
MAX_LENGTH = 200


def diagnostic_statements(statements: Iterable[str]) -> list[str]:
    """The diagnostic part of each statement (see the module docstring), blanks and repeats dropped."""
    kept: list[str] = []
    for text in statements:
        text = _ATTRIBUTION.split(str(text), maxsplit=1)[0]
        text = _DATES.sub(" ", text).replace(";", ",")
        text = re.sub(r"\s+", " ", text).strip(" ,.-:()[]")[:MAX_LENGTH].strip()
        if _WORD.search(text) and text not in kept:
            kept.append(text)
    return kept
