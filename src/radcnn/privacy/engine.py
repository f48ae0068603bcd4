"""`Deidentifier`: one project key + one `DeidConfig` -> de-identified datasets with conformance markers.

Everything keyed is derived from the project key with HKDF (see keys.py), so workers in other processes, or
runs on other days, produce the same UIDs, pseudonyms and date shifts without sharing any state:

* UIDs: HMAC under 2.25 (uids.py);
* PatientID and PatientName: ``RC-`` + 16 hex digits of HMAC(pseudonym key, patient identity), so one patient
  stays linkable across studies inside the project and nobody without the key can link back;
* dates (modified-dates option): one shift in days per patient (dates.py).

The patient identity is the original PatientID; without one, PatientName with the birth date; without those,
the StudyInstanceUID (such objects cannot be linked across studies, and the audit says so).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from radcnn.encryption.keys import derive_subkey, key_fingerprint
from radcnn.errors import DeidentificationError
from radcnn.privacy.actions import TextScrubber, ValueContext
from radcnn.privacy.config import BurnedInPolicy, DeidConfig
from radcnn.privacy.dataset import DatasetAudit, Plan, deidentify_dataset, iter_identifier_values
from radcnn.privacy.dates import date_shift_days
from radcnn.privacy.ocr import detect_and_blank
from radcnn.privacy.paths import path_identifiers
from radcnn.privacy.pixels import blank_rectangles, burned_in_reasons, has_pixels
from radcnn.privacy.profile import BASIC_PROFILE_CODE, CLEAN_PIXEL_DATA_CODE, Option, annex_e_profile
from radcnn.privacy.uids import UIDMapper

PATIENT_ID, PATIENT_NAME = 0x00100020, 0x00100010


@dataclass(frozen=True)
class PatientLink:
    """What the encrypted re-identification mapping records for one object (never written in clear)."""

    pseudonym: str
    patient_id: str
    patient_name: str
    identity_source: str  # "PatientID" | "PatientName+BirthDate" | "StudyInstanceUID"
    date_shift_days: int | None
    study_uid: str
    new_study_uid: str


@dataclass
class Outcome:
    """Result of de-identifying one dataset in memory."""

    audit: DatasetAudit
    link: PatientLink
    burned_in: list[str]
    blanked: bool
    refused: bool  # burned-in text suspected and the policy is refuse
    path_identifiers: list[str] = field(default_factory=list)  # lower-cased, for the mirrored layout
    boxes: list[dict] = field(default_factory=list)  # burned-in text boxes blanked (detect policy)


class Deidentifier:
    """Applies PS3.15 Table E.1-1 with `config`'s options, keyed by one project key."""

    def __init__(self, key: bytes, config: DeidConfig | None = None):
        self.config = config or DeidConfig()
        self.profile = annex_e_profile()
        self._key = key
        self.uid_map = UIDMapper(key)
        self._pseudonym_key = derive_subkey(key, "pseudonym/v1")
        self.path_key = derive_subkey(key, "path/v1")
        self.fingerprint = key_fingerprint(key)
        self._safe = frozenset(s.key() for s in self.config.safe_private)

    def pseudonym(self, purpose: str, original: str) -> str:
        digest = hmac.new(self._pseudonym_key, f"{purpose}:{original}".encode(), hashlib.sha256).hexdigest()
        return digest[:16].upper()

    @staticmethod
    def patient_identity(ds: Dataset) -> tuple[str, str]:
        patient_id = str(ds.get("PatientID", "") or "").strip()
        if patient_id:
            return "PatientID", patient_id
        name = str(ds.get("PatientName", "") or "").strip()
        if name:
            return "PatientName+BirthDate", f"{name}|{ds.get('PatientBirthDate', '') or ''}"
        return "StudyInstanceUID", str(ds.get("StudyInstanceUID", "") or "")

    def deidentify(self, ds: Dataset, *, where: str = "dataset") -> Outcome:
        """De-identify `ds` in place, including file meta, preamble and conformance markers.

        When burned-in text is suspected and the policy is refuse, the header is still de-identified (the
        result may go to a quarantine folder for review) but `Outcome.refused` is set."""
        options = self.config.options
        missing = [k for k in ("SOPClassUID", "SOPInstanceUID") if not str(ds.get(k, "") or "").strip()]
        if missing:
            raise DeidentificationError(
                f"{where}: no {' or '.join(missing)}: not a storable DICOM object, so it cannot be written"
            )
        source, identity = self.patient_identity(ds)
        pseudonym = "RC-" + self.pseudonym("patient", identity)
        shift = (
            date_shift_days(self._key, identity, self.config.max_shift_days)
            if Option.RETAIN_MODIFIED_DATES in options
            else None
        )
        study_uid = str(ds.get("StudyInstanceUID", "") or "")
        link = PatientLink(
            pseudonym=pseudonym,
            patient_id=str(ds.get("PatientID", "") or ""),
            patient_name=str(ds.get("PatientName", "") or ""),
            identity_source=source,
            date_shift_days=shift,
            study_uid=study_uid,
            new_study_uid=study_uid if Option.RETAIN_UIDS in options else self.uid_map(study_uid),
        )
        reasons = burned_in_reasons(ds, self.config.flag_manufacturers)
        replacements = {PATIENT_ID: pseudonym, PATIENT_NAME: pseudonym} if self.config.pseudonymise else {}
        # Clean (C) scrubs this object's own identifiers from free text: collect them before anything changes.
        values = list(iter_identifier_values(ds, self.profile, options))
        scrub = TextScrubber(values)
        path_idents = path_identifiers(ds, values)
        plan = Plan(
            profile=self.profile,
            options=options,
            ctx=ValueContext(
                uid_map=self.uid_map,
                scrub=scrub,
                pseudonym=self.pseudonym,
                shift_days=shift,
                replacements=replacements,
            ),
            sop_class_uid=str(ds.get("SOPClassUID", "") or "") or None,
            safe_private=self._safe,
        )
        audit = deidentify_dataset(ds, plan)
        if source != "PatientID":
            audit.note("notes", f"no PatientID: pseudonym and date shift keyed on {source}")
        blanked = refused = False
        boxes: list[dict] = []
        policy = self.config.burned_in
        if policy is BurnedInPolicy.DETECT and has_pixels(ds):
            # Header claims are not evidence: every image is read by OCR under this policy.
            boxes = detect_and_blank(ds, self.config, where=where)
            blanked = True
        elif reasons and policy is BurnedInPolicy.BLANK:
            blank_rectangles(ds, self.config.blank_rectangles, where=where)
            blanked = True
        elif reasons and policy is BurnedInPolicy.REFUSE:
            refused = True
        self._mark(ds, blanked)
        self._file_meta(ds)
        return Outcome(audit, link, reasons, blanked, refused, path_idents, boxes)

    def _mark(self, ds: Dataset, blanked: bool) -> None:
        """Conformance markers of PS3.15 E.1.1 and the method codes of CID 7050."""
        options = self.config.options
        ds.PatientIdentityRemoved = "YES"
        methods = self.config.method_description()
        codes = [BASIC_PROFILE_CODE] + [o.code for o in sorted(options)]
        if blanked:
            how = "OCR-detected text" if self.config.burned_in is BurnedInPolicy.DETECT else "user-given rectangles"
            methods.append(f"Clean Pixel Data Option: {how} blanked")
            codes.append(CLEAN_PIXEL_DATA_CODE)
        ds.DeidentificationMethod = methods
        items = []
        for value, meaning in sorted(codes):
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        if Option.RETAIN_MODIFIED_DATES in options:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        elif Option.RETAIN_FULL_DATES in options:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
        else:
            ds.LongitudinalTemporalInformationModified = "REMOVED"

    def _file_meta(self, ds: Dataset) -> None:
        """Rebuild the file meta from scratch: only what a reader needs, consistent with the new UIDs.

        Source/sending/receiving AE titles and private meta information are dropped; the 128-byte preamble
        (which dual-format TIFF/DICOM files use for arbitrary data) is zeroed."""
        old = getattr(ds, "file_meta", None) or FileMetaDataset()
        syntax = old.get("TransferSyntaxUID")
        if syntax is None:  # no file meta (old files): keep the encoding the dataset was read with
            syntax = {
                (True, True): ImplicitVRLittleEndian,
                (False, False): ExplicitVRBigEndian,
            }.get(tuple(ds.original_encoding or (False, True)), ExplicitVRLittleEndian)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID", ""))
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "")
        meta.TransferSyntaxUID = syntax
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "RADCNN"
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
