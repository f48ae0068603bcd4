"""Generate radcnn's packaged copy of PS3.15 Table E.1-1 (`annex_e_table.json`) from a reference rendering.

Run once when the standard is updated, then commit the output::

    python -m radcnn.privacy._build_table ../shared/data/dicom/annex_e_confidentiality_profile.json \\
        src/radcnn/privacy/annex_e_table.json

The input is the JSON rendering of Table E.1-1 (one object per row: name, tag, stdCompIOD, basicProfile and one
key per option column). The output keeps every row and action but uses radcnn's names for the option columns,
adds the pydicom keyword, and writes the tag as 8 characters in which ``x`` marks a wildcard nibble (group
masks such as 50xx,xxxx and 60xx,4000); the private-attribute row is marked ``"private": true``. The package
never reads the reference at runtime; a test checks that the two agree.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pydicom.datadict import keyword_for_tag

from radcnn.io import write_text_atomic

# Reference column name -> radcnn option name (the `Option` enum values in profile.py).
OPTION_COLUMNS = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_full_dates",
    "rtnLongModifDatesOpt": "retain_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}
_TAG = re.compile(r"^\(([0-9A-Fa-fXx]{4}),([0-9A-Fa-fXx]{4})\)$")
_ACTIONS = {"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}


def convert_row(row: dict) -> dict:
    """One reference row -> one packaged row (raises ValueError naming the row when it is not understood)."""
    text = row["tag"].strip()
    out: dict = {"tag": None, "name": row["name"], "keyword": "", "std_comp_iod": row.get("stdCompIOD") == "Y"}
    match = _TAG.match(text)
    if match:
        out["tag"] = (match.group(1) + match.group(2)).lower()
        if "x" not in out["tag"]:
            out["keyword"] = keyword_for_tag(int(out["tag"], 16))
    elif text.upper().startswith("(GGGG,EEEE)") and "ODD" in text.upper():
        out["tag"], out["private"] = "ggggeeee", True
    else:
        raise ValueError(f"row {row['name']!r}: tag {text!r} is neither (gggg,eeee) nor the private-attribute row")
    if row["basicProfile"] not in _ACTIONS:
        raise ValueError(f"row {row['name']!r}: unknown basic profile action {row['basicProfile']!r}")
    out["basic"] = row["basicProfile"]
    out["options"] = {}
    for column, option in OPTION_COLUMNS.items():
        if row.get(column):
            if row[column] not in {"K", "C"}:
                raise ValueError(f"row {row['name']!r}: unexpected option action {row[column]!r} in {column}")
            out["options"][option] = row[column]
    return out


def build_table(reference: Path) -> dict:
    rows = json.loads(reference.read_text(encoding="utf-8"))
    converted = sorted((convert_row(r) for r in rows), key=lambda r: r["tag"])
    tags = [r["tag"] for r in converted]
    if len(set(tags)) != len(tags):
        raise ValueError(f"{reference}: duplicate tags in the reference table")
    return {
        "source": "DICOM PS3.15 Table E.1-1, Application Level Confidentiality Profile Attributes (2024b)",
        "generated_from": reference.name,
        "option_columns": OPTION_COLUMNS,
        "rows": converted,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    table = build_table(args.reference)
    write_text_atomic(args.output, json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
