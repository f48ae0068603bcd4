"""docs/example-config.yaml is complete and correct, and docs/configuration.md shows it and every CLI option."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from radcnn.cli.train import OPTION_FIELDS
from radcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "example-config.yaml"
PAGE = ROOT / "docs" / "configuration.md"
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def test_load_config_reads_the_example_and_every_value_is_the_default():
    # Only data.source is set (it has no useful default), so every "default" the comments claim is the real one.
    assert load_config(EXAMPLE) == RunConfig(data=DataConfig(source="data/phantom"))


def test_the_example_names_every_field_of_every_section():
    written = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert set(written) == set(SECTIONS)
    for section, cls in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(written[section]) == fields, f"{section}: missing {fields - set(written[section])}"


# Keys that share the comment of the key just above them (the seed recipe, the split fractions, fold with folds).
SHARED_COMMENT = {"batch_size", "lr", "test_fraction", "fold"}


def test_every_key_has_a_comment_above_it():
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    undocumented = [
        key.group(1)
        for i, line in enumerate(lines)
        if (key := re.match(r"^  (\w+):", line))
        and key.group(1) not in SHARED_COMMENT
        and not lines[i - 1].strip().startswith("#")
    ]
    assert not undocumented, f"keys without a comment in {EXAMPLE.name}: {undocumented}"


def test_the_page_shows_the_example_file_verbatim():
    page = PAGE.read_text(encoding="utf-8")
    body = EXAMPLE.read_text(encoding="utf-8")
    config_part = body[body.index("data:\n") :].rstrip()
    assert config_part in page, "docs/configuration.md must show docs/example-config.yaml from `data:` on, unchanged"


def test_the_page_maps_every_train_option_to_its_key():
    page = PAGE.read_text(encoding="utf-8")
    for option, (section, field) in OPTION_FIELDS.items():
        flag = "--option" if option == "layout_option" else "--" + option.replace("_", "-")
        assert re.search(rf"`{re.escape(flag)}[ `/,]", page), f"{flag} is not in the options table"
        assert f"`{section}.{field}`" in page, f"{section}.{field} is not in the options table"
