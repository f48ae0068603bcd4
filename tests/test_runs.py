"""`RunDir`: the one owner of a run's files — names, encrypted variants, creation and resumption rules."""

import pandas as pd
import pytest

from radcnn.config import RunConfig
from radcnn.encryption import Secret, generate_key_file
from radcnn.errors import ConfigError, RunDirectoryError
from radcnn.runs import (
    SPLIT,
    RunDir,
    check_destination,
    metrics_name,
    partial_dir,
    predictions_name,
    start_run,
)
from radcnn.training.fit import apply_changes, resumed_config


def test_file_names_per_split():
    assert (metrics_name(), metrics_name("val")) == ("metrics.json", "metrics_val.json")
    assert (predictions_name(), predictions_name("val")) == ("predictions.csv", "predictions_val.csv")


def test_an_incomplete_run_says_what_is_missing_and_where_the_interrupted_one_is(tmp_path):
    with pytest.raises(RunDirectoryError, match="no such run directory"):
        RunDir.open(tmp_path / "absent")
    run = tmp_path / "run"
    run.mkdir()
    partial_dir(run).mkdir()
    with pytest.raises(RunDirectoryError, match=r"config.yaml is missing .*continue it with --resume"):
        RunDir.open(run)


def test_tables_are_written_encrypted_in_an_encrypted_run_and_read_back(tmp_path):
    key = generate_key_file(tmp_path / "k.key")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    config = RunConfig()
    config = apply_changes(config, {"data.key_file": str(key), "data.source": "x"})
    run.write_config(config)
    table = pd.DataFrame({"path": ["a.dcm"], "patient_id": ["P1"], "split": ["test"]})
    written = run.write_table(SPLIT, table)
    assert written.name == "split.csv.rcenc" and not (run.path / SPLIT).exists()
    assert b"P1" not in written.read_bytes()
    assert RunDir(run.path).split_table().equals(table)  # the key the config names
    assert RunDir(run.path, key=Secret.from_key_file(key)).split_rows("test")["patient_id"].tolist() == ["P1"]


def test_destination_rules(tmp_path):
    run = tmp_path / "run"
    check_destination(run)  # new: fine
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        check_destination(run, resume=True)
    with pytest.raises(RunDirectoryError, match="exclude each other"):
        check_destination(run, resume=True, overwrite=True)
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="already exists"):
        check_destination(run)
    with pytest.raises(RunDirectoryError, match="not a radcnn run directory"):
        check_destination(run, overwrite=True)  # --overwrite only ever replaces a run
    other = tmp_path / "other"
    staging = start_run(other)
    assert staging.run.path == partial_dir(other) and (partial_dir(other) / "run.json").is_file()
    with pytest.raises(RunDirectoryError, match="interrupted run exists"):
        check_destination(other)


def test_resumed_configuration_may_only_extend_epochs():
    saved = RunConfig()
    assert resumed_config(saved, None, {"train.batch_size": 32}) == saved  # same value: nothing to refuse
    longer = resumed_config(saved, None, {"train.epochs": 20}, names={"train.epochs": "--epochs"})
    assert longer.train.epochs == 20 and longer.train.lr == saved.train.lr
    with pytest.raises(ConfigError, match=r"cannot resume with --lr 0.1: the run was started with train.lr = 0.001"):
        resumed_config(saved, None, {"train.lr": 0.1}, names={"train.lr": "--lr", "train.epochs": "--epochs"})
    with pytest.raises(ConfigError, match="plans 10 epochs already"):
        resumed_config(saved, None, {"train.epochs": 5})
