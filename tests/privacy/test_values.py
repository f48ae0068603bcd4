"""Pure pieces: new_value per action and VR, the text scrubber, keyed UIDs, keyed date shifts, key files."""

from __future__ import annotations

import os
import stat

import pytest
from pydicom.valuerep import validate_value

from radcnn.encryption.keys import (
    KeyFileError,
    Secret,
    derive_subkey,
    generate_key_file,
    key_fingerprint,
    load_key_file,
)
from radcnn.privacy.actions import DUMMY_VALUES, REMOVE, TextScrubber, ValueContext, new_value
from radcnn.privacy.dates import date_shift_days, shift_date, shift_datetime, shift_temporal
from radcnn.privacy.profile import Action
from radcnn.privacy.uids import UIDMapper, derive_uid

KEY = b"\x11" * 32
CTX = ValueContext(
    uid_map=UIDMapper(KEY),
    scrub=TextScrubber(["Jane", "Doe", "MRN0012345"]),
    pseudonym=lambda purpose, original: f"{purpose}-{original}".upper(),
    shift_days=-10,
    replacements={0x00100020: "RC-PSEUDO"},
)


def test_remove_keep_empty_dummy():
    assert new_value(0x00081030, "LO", "CHEST", Action.REMOVE, CTX) is REMOVE
    assert new_value(0x00081030, "LO", "CHEST", Action.KEEP, CTX) == "CHEST"
    assert new_value(0x00080020, "DA", "20200101", Action.EMPTY, CTX) == ""
    assert new_value(0x00101030, "DS", "80", Action.EMPTY, CTX) == ""
    assert new_value(0x00102203, "US", 3, Action.EMPTY, CTX) is None
    assert new_value(0x00400555, "OB", b"ab", Action.EMPTY, CTX) == b""
    assert new_value(0x00100020, "LO", "MRN0012345", Action.EMPTY, CTX) == "RC-PSEUDO"  # pseudonym allowed by Z
    assert new_value(0x00100020, "LO", "MRN0012345", Action.DUMMY, CTX) == "RC-PSEUDO"
    assert new_value(0x00080090, "PN", "House^Greg", Action.DUMMY, CTX) == "ANONYMIZED"
    assert new_value(0x00080021, "DA", "20200101", Action.DUMMY, CTX) == "19000101"


@pytest.mark.parametrize("vr", sorted(v for v in DUMMY_VALUES if isinstance(DUMMY_VALUES[v], str)))
def test_dummy_values_are_valid_for_their_vr(vr):
    validate_value(vr, DUMMY_VALUES[vr], validation_mode=2)  # 2 = raise on invalid


def test_uid_action_maps_every_value_consistently():
    one = new_value(0x0020000D, "UI", "1.2.3.4", Action.UID, CTX)
    assert one == new_value(0x00081155, "UI", "1.2.3.4", Action.UID, CTX)  # same UID, other attribute
    multi = new_value(0x00080058, "UI", ["1.2.3.4", "1.2.3.5"], Action.UID, CTX)
    assert multi[0] == one and multi[1] != one


def test_clean_by_vr():
    assert new_value(0x00080020, "DA", "20200111", Action.CLEAN, CTX) == "20200101"
    assert new_value(0x0008002A, "DT", "20200111093000.5+0100", Action.CLEAN, CTX) == "20200101093000.5+0100"
    assert new_value(0x00080030, "TM", "093000", Action.CLEAN, CTX) == "093000"
    assert new_value(0x00081010, "AE", "CT_SCANNER_3", Action.CLEAN, CTX) == "AE-CT_SCANNER_3"[:16]
    text = "Chest PA for Jane DOE, MRN0012345, call 5551234 or jd@example.org on 03/05/2021"
    cleaned = new_value(0x00081030, "LO", text, Action.CLEAN, CTX)
    assert cleaned == "Chest PA for *** ***, ***, call *** or *** on ***"
    # No date shift available (option off): the basic action is the fallback.
    no_shift = ValueContext(uid_map=CTX.uid_map, scrub=CTX.scrub, pseudonym=CTX.pseudonym)
    assert new_value(0x00080020, "DA", "20200111", Action.CLEAN, no_shift, fallback=Action.EMPTY) == ""
    # An unparseable date cannot be shifted: fallback too. Binary VRs cannot be cleaned: fallback.
    assert new_value(0x00080020, "DA", "junk", Action.CLEAN, CTX, fallback=Action.REMOVE) is REMOVE
    assert new_value(0x00181800, "OB", b"xx", Action.CLEAN, CTX, fallback=Action.REMOVE) is REMOVE


def test_uid_derivation_properties():
    mapper, other = UIDMapper(KEY), UIDMapper(b"\x22" * 32)
    new = mapper("1.2.840.113619.2.55.3.604688119.969.1268071029.320")
    assert new.startswith("2.25.") and len(new) <= 64
    validate_value("UI", new, validation_mode=2)
    assert new == UIDMapper(KEY)("1.2.840.113619.2.55.3.604688119.969.1268071029.320")  # across instances/runs
    assert new != other("1.2.840.113619.2.55.3.604688119.969.1268071029.320")  # key-dependent
    assert mapper("1.2.3") != mapper("1.2.4")
    assert mapper("1.2.3\x00") == mapper("1.2.3")  # padding does not change identity
    assert derive_uid(derive_subkey(KEY, "uid/v1"), "") == ""
    # The 128-bit value is a version-8 variant-1 UUID.
    value = int(new[5:])
    assert (value >> 76) & 0xF == 8 and (value >> 62) & 0x3 == 0b10


def test_date_shift_is_keyed_per_patient_and_in_range():
    a = date_shift_days(KEY, "MRN1", 3650)
    assert -3650 <= a <= -1
    assert a == date_shift_days(KEY, "MRN1", 3650)
    shifts = {date_shift_days(KEY, f"MRN{i}", 3650) for i in range(50)}
    assert len(shifts) > 40  # patients get different shifts
    assert date_shift_days(b"\x33" * 32, "MRN1", 3650) != a or date_shift_days(b"\x44" * 32, "MRN1", 3650) != a
    assert date_shift_days(KEY, "MRN1", 1) == -1


def test_shift_formats():
    assert shift_date("20200301", -1) == "20200229"  # leap day
    assert shift_date("1999.12.31", 1) == "20000101"  # legacy ACR-NEMA form
    assert shift_datetime("2020", -1) == "2019"
    assert shift_datetime("202003", -1) == "202002"
    assert shift_datetime("20200301120000.123456-0500", -366) == "20190301120000.123456-0500"
    assert shift_temporal("TM", "101500", -5) == "101500"
    with pytest.raises(ValueError):
        shift_date("2020-03-01", 1)
    with pytest.raises(ValueError):
        shift_datetime("2020030112x", 1)


def test_key_files(tmp_path):
    path = generate_key_file(tmp_path / "k" / "project.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = load_key_file(path)
    assert len(key) == 32 and key != load_key_file(generate_key_file(tmp_path / "second.key"))
    assert len(key_fingerprint(key)) == 16 and key.hex() not in key_fingerprint(key)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_key_file(path)
    with pytest.raises(KeyFileError, match="not found; create one with `radcnn keygen"):
        load_key_file(tmp_path / "missing.key")
    with pytest.raises(KeyFileError, match="no key given"):
        load_key_file(None)
    bad = tmp_path / "bad.key"
    bad.write_text("# comment\nnot-hex\n")
    with pytest.raises(KeyFileError, match="malformed"):
        load_key_file(bad)
    assert "material=<hidden>" in repr(Secret.from_key_file(path))
    assert derive_subkey(key, "a") != derive_subkey(key, "b")
    with pytest.raises(KeyFileError, match="passphrase is empty"):
        Secret.from_passphrase("")
