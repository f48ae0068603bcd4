"""The packaged Table E.1-1 against the reference copy, tag lookup (masks, private), and action resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radcnn.errors import ConfigError
from radcnn.privacy._build_table import OPTION_COLUMNS, build_table
from radcnn.privacy.profile import (
    Action,
    Option,
    annex_e_profile,
    attribute_type,
    option_for_code,
    parse_options,
    resolve_basic,
)

REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "data" / "dicom" / "annex_e_confidentiality_profile.json"
PACKAGED = Path(__file__).parents[2] / "src" / "radcnn" / "privacy" / "annex_e_table.json"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"


@pytest.fixture(scope="module")
def reference_rows() -> list[dict]:
    if not REFERENCE.is_file():
        pytest.skip(f"reference copy of Table E.1-1 not found at {REFERENCE}")
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def _ref_tag(text: str) -> str:
    if text.upper().startswith("(GGGG,EEEE)"):
        return "ggggeeee"
    return (text[1:5] + text[6:10]).lower()


def test_packaged_table_matches_reference(reference_rows):
    packaged = {rule.tag: rule for rule in annex_e_profile().rows}
    assert len(reference_rows) == 621 == len(packaged)
    for row in reference_rows:
        rule = packaged[_ref_tag(row["tag"])]
        assert rule.name == row["name"]
        assert rule.basic == row["basicProfile"], row["name"]
        expected = {OPTION_COLUMNS[c]: row[c] for c in OPTION_COLUMNS if row.get(c)}
        assert dict(rule.options) == expected, row["name"]


def test_packaged_file_is_what_the_build_script_generates(reference_rows):
    assert json.loads(PACKAGED.read_text(encoding="utf-8"))["rows"] == build_table(REFERENCE)["rows"]


def test_lookup_exact_masked_and_private():
    profile = annex_e_profile()
    assert profile.lookup(0x00100010).name == "Patient's Name"
    assert profile.lookup(0x50023000).name == "Curve Data"  # (50xx,xxxx): any curve group, any element
    assert profile.lookup(0x501E0010).name == "Curve Data"
    assert profile.lookup(0x60024000).name == "Overlay Comments"
    assert profile.lookup(0x601E3000).name == "Overlay Data"
    assert profile.lookup(0x60000010) is None  # Overlay Rows is not in the table
    assert profile.lookup(0x00091001) is profile.private_rule
    assert profile.lookup(0x00290010) is profile.private_rule  # private creators too
    assert profile.lookup(0x00280010) is None  # Rows


@pytest.mark.parametrize(
    ("code", "type_", "expected"),
    [
        ("X", None, Action.REMOVE),
        ("Z/D", None, Action.EMPTY),
        ("Z/D", 1, Action.DUMMY),
        ("X/Z", 3, Action.REMOVE),
        ("X/Z", 2, Action.EMPTY),
        ("X/D", None, Action.REMOVE),
        ("X/D", 1, Action.DUMMY),
        ("X/Z/D", 3, Action.REMOVE),
        ("X/Z/D", 2, Action.EMPTY),
        ("X/Z/D", 1, Action.DUMMY),
        ("X/Z/U*", None, Action.REMOVE),
        ("X/Z/U*", 2, Action.EMPTY),
        ("X/Z/U*", 1, Action.UID),
    ],
)
def test_combined_codes_resolve_by_type(code, type_, expected):
    assert resolve_basic(code, type_) is expected


def test_type_depends_on_the_iod():
    profile = annex_e_profile()
    assert attribute_type(0x00080023, DX) == 1 and attribute_type(0x00080023, CR) == 2  # Content Date
    assert profile.action(0x00080023, frozenset(), DX) is Action.DUMMY
    assert profile.action(0x00080023, frozenset(), CR) is Action.EMPTY
    assert profile.action(0x00400555, frozenset(), DX) is Action.EMPTY  # Acquisition Context Sequence
    assert profile.action(0x00400555, frozenset(), CR) is Action.REMOVE
    assert profile.action(0x00080080, frozenset(), CR) is Action.REMOVE  # Institution Name X/Z/D, Type 3


def test_options_override_and_clean_wins_over_keep():
    profile = annex_e_profile()
    assert profile.action(0x0020000D, frozenset()) is Action.UID
    assert profile.action(0x0020000D, frozenset({Option.RETAIN_UIDS})) is Action.KEEP
    assert profile.action(0x00080020, frozenset({Option.RETAIN_MODIFIED_DATES})) is Action.CLEAN
    assert profile.action(0x00080020, frozenset({Option.RETAIN_FULL_DATES})) is Action.KEEP
    # Date of Last Detector Calibration: device identity keeps, modified dates cleans -> clean.
    both = frozenset({Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_MODIFIED_DATES})
    assert profile.action(0x0018700C, both) is Action.CLEAN
    assert profile.action(0x00081030, frozenset({Option.CLEAN_DESCRIPTORS})) is Action.CLEAN


def test_parse_options_and_codes():
    assert parse_options(["retain-uids", "Clean_Descriptors"]) == {Option.RETAIN_UIDS, Option.CLEAN_DESCRIPTORS}
    with pytest.raises(ConfigError, match="unknown de-identification option 'retain_everything'"):
        parse_options(["retain_everything"])
    with pytest.raises(ConfigError, match="exclude each other"):
        parse_options(["retain_full_dates", "retain_modified_dates"])
    assert option_for_code("113107") is Option.RETAIN_MODIFIED_DATES
    assert option_for_code("113100") is None
    assert {o.code[0] for o in Option} == {f"1131{n:02d}" for n in (4, 5, 6, 7, 8, 9, 10, 11, 12)}
