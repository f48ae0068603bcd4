"""Public dataset layouts: one module per layout, each with a dataset card in its docstring, all in `LAYOUTS`.

``load_layout(name, source, **options) -> Manifest`` loads any of them ("auto" detects the layout from the folder
or file); ``detect_layout(path) -> str`` only names it. Every loader takes ``on_error`` ("fail" raises
ManifestError naming file, row and column; "skip" leaves the row out and lists it in ``Manifest.skipped``, which
:func:`write_skipped_csv` writes out) and ``check_files``.
"""

from __future__ import annotations

# Importing the layout modules registers them; the order here does not matter (detection uses priorities).
from radcnn.data.layouts import (
    chexpert,
    csv_manifest,
    dicom_folder,
    folder_per_class,
    medmnist,
    nih_chestxray14,
    rsna_pneumonia,
)
from radcnn.data.layouts.common import parse_boxes, summarize_skipped, write_skipped_csv
from radcnn.data.layouts.inspection import DatasetReport, inspect_dataset
from radcnn.data.layouts.registry import LAYOUTS, detect_layout, layout_card, layout_infos, layout_options, load_layout

__all__ = [
    "LAYOUTS",
    "DatasetReport",
    "chexpert",
    "csv_manifest",
    "detect_layout",
    "dicom_folder",
    "folder_per_class",
    "inspect_dataset",
    "layout_card",
    "layout_infos",
    "layout_options",
    "load_layout",
    "medmnist",
    "nih_chestxray14",
    "parse_boxes",
    "rsna_pneumonia",
    "summarize_skipped",
    "write_skipped_csv",
]
