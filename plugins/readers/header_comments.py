"""WFDB header comments as metadata: `#Dx:` SNOMED-CT codes become labels; age, sex and patient ids.

Conventions read: the PhysioNet/CinC Challenge 2020/2021 (`#Age: 54`, `#Sex: Male`, `#Dx: 164889003,59118001`),
angle-bracket keys as in LUDB and INCART (`#<age>: 51`, `#<sex>: F`, several `<key>: value` pairs on one line),
lower-case keys as in the PTB Diagnostic database (`# age: 81`, `# sex: female`), and patient ids
(`#Patient: 17`, `#Patient ID: ...`, `#Subject: ...`). `#Dx:` codes are mapped to the abbreviations of the
challenge's scored/unscored table (`snomed_ct.csv`, see `benchmarks/build_snomed_table.py`); a code the table
does not know is kept as the code. The raw codes stay in the `dx` column.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SNOMED_TABLE = Path(__file__).with_name("snomed_ct.csv")
KEYS = {"age": "age", "sex": "sex", "gender": "sex", "dx": "dx", "patient": "patient_id", "patient id": "patient_id",
        "patient_id": "patient_id", "subject": "patient_id", "subject id": "patient_id", "subject_id": "patient_id"}
MISSING = {"", "unknown", "nan", "none", "n/a", "na", "?"}
SEXES = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F"}
_BRACKETED = re.compile(r"<\s*([^<>:]+?)\s*>\s*:\s*")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@lru_cache(maxsize=1)
def snomed_labels() -> dict[str, str]:
    """SNOMED-CT code -> class name (the challenge abbreviation; equivalent codes share one name)."""
    import csv

    with open(SNOMED_TABLE, newline="") as handle:
        return {row["code"]: row["label"] for row in csv.DictReader(handle)}


def dx_labels(value: str) -> list[str]:
    """`164889003,59118001` -> ['AF', 'RBBB']: codes split on commas, semicolons or spaces, mapped, deduplicated."""
    table = snomed_labels()
    labels: list[str] = []
    for code in re.split(r"[,;\s]+", value.strip()):
        label = table.get(code, code)
        if code and label not in labels:
            labels.append(label)
    return labels


def comment_pairs(comment: str) -> list[tuple[str, str]]:
    """`<age>: 65 <sex>: M` -> [('age', '65'), ('sex', 'M')]; `Age: 54` -> [('age', '54')]; keys lower-cased."""
    found = list(_BRACKETED.finditer(comment))
    if found:
        ends = [m.start() for m in found[1:]] + [len(comment)]
        return [(m.group(1).strip().lower(), comment[m.end():end].strip()) for m, end in zip(found, ends)]
    key, sep, value = comment.partition(":")
    return [(key.strip().lower(), value.strip())] if sep else []


def parse_comments(comments: list[str]) -> dict[str, Any]:
    """Metadata from header comments: `age`, `sex` (M/F where recognised), `patient_id`, `dx` and `labels`."""
    meta: dict[str, Any] = {}
    for comment in comments:
        for key, value in comment_pairs(comment):
            column = KEYS.get(key)
            if column is None or value.lower() in MISSING:
                continue
            if column == "age":
                number = _NUMBER.search(value)
                if number is None:
                    continue
                age = float(number.group())
                meta["age"] = int(age) if age.is_integer() else age
            elif column == "sex":
                meta["sex"] = SEXES.get(value.lower(), value)
            elif column == "dx":
                meta["dx"] = value
                meta["labels"] = ";".join(dx_labels(value))
            else:
                meta[column] = value
    return meta
