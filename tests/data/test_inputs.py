"""The one input path: every consumer gets the same model input for the same file."""

import numpy as np
import pytest

from radcnn.data.cache.build import build_cache
from radcnn.data.cache.memory import decode_in_memory
from radcnn.data.cache.store import quantize
from radcnn.data.inputs import InputSpec, load_input
from radcnn.encryption import Secret, encrypt_file
from radcnn.errors import ConfigError, ImageReadError
from radcnn.models.spec import ModelSpec
from radcnn.serve.predictor import Predictor


@pytest.fixture
def files(tmp_path, write_dicom, radiograph_12bit):
    from PIL import Image

    dicom = write_dicom(radiograph_12bit, "chest.dcm")
    png = tmp_path / "chest.png"
    Image.fromarray((radiograph_12bit // 16).astype(np.uint8)).save(png)
    return [dicom, png]


def test_cache_memory_store_predictor_and_bytes_agree(files, tmp_path):
    spec = ModelSpec(architecture="seed_cnn", input_size=(32, 32), label_names=("y",))
    direct = [load_input(path, spec).array for path in files]
    cached = build_cache(files, size=(32, 32), cache_dir=tmp_path / "cache", workers=2)
    in_memory = decode_in_memory(files, size=(32, 32), key=None, workers=1)
    predictor = Predictor(torch_model(), spec)
    for i, path in enumerate(files):
        expected = quantize(direct[i][0])
        assert np.array_equal(quantize(cached[i][0]), expected)
        assert np.array_equal(quantize(in_memory[i][0]), expected)
        assert np.array_equal(predictor.prepare(path)[0], direct[i])
        from_bytes = load_input(path.read_bytes(), spec, name=path.name).array
        assert np.array_equal(from_bytes, direct[i])


def test_an_encrypted_file_is_found_under_its_plain_name(files, tmp_path):
    from radcnn.encryption import generate_key_file

    secret = Secret.from_key_file(generate_key_file(tmp_path / "k.key"))
    encrypted = files[0].with_name(files[0].name + ".rcenc")
    encrypt_file(files[0], encrypted, secret)
    expected = load_input(files[0], InputSpec((32, 32))).array
    files[0].unlink()
    loaded = load_input(files[0], InputSpec((32, 32)), key=secret)
    assert np.array_equal(loaded.array, expected) and loaded.source == str(files[0])


def test_channels_and_bad_sources(files, tmp_path):
    assert load_input(files[1], InputSpec((16, 16), channels=3)).array.shape == (3, 16, 16)
    with pytest.raises(ImageReadError, match="file not found"):
        load_input(tmp_path / "absent.dcm", InputSpec((16, 16)))
    with pytest.raises(ImageReadError, match="is a directory"):
        load_input(tmp_path, InputSpec((16, 16)))
    with pytest.raises(ConfigError, match="cannot derive a model input from dict"):
        load_input(files[1], {"size": 16})


def torch_model():
    from radcnn.models.registry import create_model

    return create_model("seed_cnn", input_size=(32, 32))
