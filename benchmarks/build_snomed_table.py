"""Rebuild `plugins/readers/snomed_ct.csv`, the SNOMED-CT -> abbreviation table that ingest uses for `#Dx:` lines.

Source: the PhysioNet/CinC Challenge 2020/2021 mapping tables (physionetchallenges/evaluation-2021, BSD 2-Clause),
in ../shared/data/snomed: `dx_mapping_scored.csv` (30 scored diagnoses) and `dx_mapping_unscored.csv` (103 others).
The `label` column is the class name written into a store's labels: the abbreviation, except that the pairs the
challenge scores as one diagnosis share one name (CRBBB -> RBBB, CLBBB -> LBBB, SVPB -> PAC, VPB -> PVC).

    python benchmarks/build_snomed_table.py [SNOMED_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "snomed"
OUT = REPO / "plugins" / "readers" / "snomed_ct.csv"
SAME_DIAGNOSIS = {"CRBBB": "RBBB", "CLBBB": "LBBB", "SVPB": "PAC", "VPB": "PVC"}  # Reyna et al., CinC 2021


def build(folder: Path) -> pd.DataFrame:
    parts = []
    for name, scored in (("dx_mapping_scored.csv", 1), ("dx_mapping_unscored.csv", 0)):
        table = pd.read_csv(folder / name, dtype={"SNOMEDCTCode": str})
        parts.append(pd.DataFrame({"code": table["SNOMEDCTCode"].str.strip(),
                                   "abbreviation": table["Abbreviation"].str.strip(),
                                   "description": table["Dx"].str.strip(), "scored": scored}))
    table = pd.concat(parts, ignore_index=True)
    if table["code"].duplicated().any() or table["abbreviation"].duplicated().any():
        raise SystemExit("the challenge tables repeat a code or an abbreviation; check the source files")
    table.insert(2, "label", table["abbreviation"].replace(SAME_DIAGNOSIS))
    return table.sort_values(["scored", "label"], ascending=[False, True])


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else SHARED
    build(folder).to_csv(OUT, index=False)
    print(f"wrote {OUT}")
