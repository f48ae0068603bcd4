import pytest

from radcnn.config import RunConfig, config_from_dict, dump_config, load_config
from radcnn.errors import ConfigError


def test_defaults_are_the_seed_training_settings():
    train = RunConfig().train
    assert (train.epochs, train.batch_size, train.lr) == (10, 32, 1e-3)


def test_yaml_round_trip(tmp_path):
    config = config_from_dict({"data": {"source": "a.csv", "image_size": [64, 64]}, "train": {"epochs": 3}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert load_config(path).data.image_size == (64, 64)


def test_toml_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\nname = "resnet18"\n[train]\nlr = 0.01\n')
    config = load_config(path)
    assert config.model.name == "resnet18" and config.train.lr == 0.01


def test_unknown_keys_name_the_file_and_the_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml\.train: unknown key\(s\) epoch; valid keys: .*epochs"):
        load_config(path)


@pytest.mark.parametrize(
    "values",
    [{"train": {"epochs": 0}}, {"data": {"val_fraction": 0.6, "test_fraction": 0.5}}, {"data": {"on_error": "x"}}],
)
def test_bad_values_are_rejected(values):
    with pytest.raises(ConfigError):
        config_from_dict(values)
