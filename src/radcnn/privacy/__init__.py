"""Patient privacy: DICOM de-identification to PS3.15 Annex E and its verification.

    from radcnn.encryption import load_key_file
    from radcnn.privacy import DeidConfig, deidentify_tree, check_tree

    key = load_key_file("project.key")                      # `radcnn keygen project.key`
    summary = deidentify_tree("raw/", "deid/", key, DeidConfig(options={"retain_modified_dates"}))
    report = check_tree("deid/", identifiers=["Doe^Jane"])

    make_benchmark("bench/")                                 # planted phantom export + answer key
    report = score_output("deid/", "bench/answer_key.json")  # MIDI-B style: % of required actions done

Modules: profile (Table E.1-1 as data + action resolution), actions (pure value replacement), uids, dates,
dataset (the sequence walker), engine (`Deidentifier`), reading (damaged-file detection), paths (output names),
audit (the path-free audit log), deidentify (files and trees), pixels (burned-in rules, blanking), ocr
(Tesseract text detection), verify (`deid check`), benchmark (planted test set), score (`deid score`). Encryption at rest (keys, the file format, trees) is `radcnn.encryption`.
"""

from radcnn.privacy.benchmark import make_benchmark
from radcnn.privacy.config import BurnedInPolicy, DeidConfig, Layout, OnError, Rectangle, SafePrivate
from radcnn.privacy.deidentify import DeidSummary, FileResult, deidentify_file, deidentify_tree
from radcnn.privacy.engine import Deidentifier
from radcnn.privacy.profile import Action, Option, annex_e_profile
from radcnn.privacy.score import ScoreReport, score_output
from radcnn.privacy.verify import CheckReport, Finding, check_tree

__all__ = [
    "Action",
    "BurnedInPolicy",
    "CheckReport",
    "DeidConfig",
    "DeidSummary",
    "Deidentifier",
    "FileResult",
    "Finding",
    "Layout",
    "OnError",
    "Option",
    "Rectangle",
    "SafePrivate",
    "ScoreReport",
    "annex_e_profile",
    "check_tree",
    "deidentify_file",
    "deidentify_tree",
    "make_benchmark",
    "score_output",
]
