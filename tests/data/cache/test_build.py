"""Decode-once cache: values, keys and invalidation, resume after interruption, error policy, parallel == serial."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radcnn.data.cache.build import CachedImages, build_cache
from radcnn.data.readers.dispatch import read_image
from radcnn.data.transforms import preprocess
from radcnn.errors import ConfigError, ImageReadError

SIZE = (16, 12)
TOLERANCE = 0.5 / 65535 + 1e-7  # uint16 storage: half a quantisation step


@pytest.fixture
def image_files(tmp_path, write_dicom, radiograph_12bit) -> list[Path]:
    paths = []
    for k in range(6):
        pixels = np.roll(radiograph_12bit, 5 * k, axis=1)
        paths.append(write_dicom(pixels, name=f"img{k}.dcm", bits_stored=12, WindowCenter=1800, WindowWidth=3000))
    Image.fromarray((radiograph_12bit * 16).astype(np.uint16)).save(tmp_path / "img6.png")
    return [*paths, tmp_path / "img6.png"]


class Interrupted(Exception):
    pass


def _stop_after(k: int):
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == k:
            raise Interrupted(f"stopped after {k} files")

    return progress


def _expected(path: Path, size=SIZE, window="stored") -> np.ndarray:
    return preprocess(read_image(path, window=window, target_size=size)[0], size)


def test_values_equal_direct_read_and_preprocess(tmp_path, image_files):
    cached = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "cache", workers=1)
    assert isinstance(cached, CachedImages) and len(cached) == len(image_files)
    assert cached.array().shape == (len(image_files), 1, *SIZE) and cached.array().dtype == np.uint16
    for i, path in enumerate(image_files):
        assert cached[i].dtype == np.float32 and cached[i].shape == (1, *SIZE)
        np.testing.assert_allclose(cached[i], _expected(path), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(cached.batch([3, 0]), np.stack([cached[3], cached[0]]), atol=0)
    assert cached.skipped == [] and cached.valid.all() and cached.decoded == len(image_files)


def test_window_is_part_of_the_key(tmp_path, image_files):
    full = build_cache(image_files[:2], size=SIZE, cache_dir=tmp_path / "c", window="full", workers=1)
    np.testing.assert_allclose(full[1], _expected(image_files[1], window="full"), atol=TOLERANCE, rtol=0)
    stored = build_cache(image_files[:2], size=SIZE, cache_dir=tmp_path / "c", workers=1)
    assert stored.decoded == 2 and not np.array_equal(full.array(), stored.array())


def test_parallel_equals_serial(tmp_path, image_files):
    serial = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "serial", workers=1)
    seen = []
    parallel = build_cache(
        image_files, size=SIZE, cache_dir=tmp_path / "parallel", workers=2, progress=lambda d, t: seen.append((d, t))
    )
    np.testing.assert_array_equal(parallel.array(), serial.array())
    assert sorted(seen) == [(k, len(image_files)) for k in range(1, len(image_files) + 1)]


def test_rebuild_decodes_nothing(tmp_path, image_files):
    first = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    seen = []
    again = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", progress=lambda d, t: seen.append((d, t)))
    assert again.decoded == 0 and seen == [(len(image_files), len(image_files))]
    np.testing.assert_array_equal(again.array(), first.array())


def test_content_change_invalidates_only_that_file(tmp_path, image_files, write_dicom, radiograph_12bit):
    first = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    before = first.array().copy()
    changed = image_files[2]
    stat = changed.stat()
    write_dicom(4095 - radiograph_12bit, name=changed.name, bits_stored=12, WindowCenter=1800, WindowWidth=3000)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # robust to coarse file-system clocks
    again = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    assert again.decoded == 1
    np.testing.assert_allclose(again[2], _expected(changed), atol=TOLERANCE, rtol=0)
    assert not np.array_equal(again.array()[2], before[2])
    keep = [i for i in range(len(image_files)) if i != 2]
    np.testing.assert_array_equal(again.array()[keep], before[keep])


def test_touched_but_identical_file_is_hashed_not_decoded(tmp_path, image_files):
    build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    stat = image_files[0].stat()
    os.utime(image_files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1).decoded == 0


def test_size_change_uses_another_store(tmp_path, image_files):
    build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    small = build_cache(image_files, size=(8, 8), cache_dir=tmp_path / "c", workers=1)
    assert small.decoded == len(image_files) and small.array().shape == (len(image_files), 1, 8, 8)
    np.testing.assert_allclose(small[0], _expected(image_files[0], size=(8, 8)), atol=TOLERANCE, rtol=0)
    assert build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1).decoded == 0
    assert len(list((tmp_path / "c").glob("store-*"))) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_build_resumes_where_it_stopped(tmp_path, image_files, workers):
    with pytest.raises(Interrupted):
        build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=workers, progress=_stop_after(3))
    (store,) = (tmp_path / "c").glob("store-*")
    index = json.loads((store / "index.json").read_text())
    assert len(index["content"]) == 3 and len(index["files"]) == 3 and index["rows"] >= 3
    assert sorted(p.name for p in store.iterdir()) == [".lock", "index.json", "params.json", "rows.u16"]
    resumed = build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=workers)
    assert resumed.decoded == len(image_files) - 3
    for i, path in enumerate(image_files):
        np.testing.assert_allclose(resumed[i], _expected(path), atol=TOLERANCE, rtol=0)


def test_skip_policy_records_failures(tmp_path, image_files):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(image_files[0].read_bytes()[:700])
    paths = [image_files[0], bad, tmp_path / "missing.png", image_files[1]]
    cached = build_cache(paths, size=SIZE, cache_dir=tmp_path / "c", workers=2, on_error="skip")
    assert [p for p, _ in cached.skipped] == [bad, tmp_path / "missing.png"]
    assert "file not found" in cached.skipped[1][1] and cached.skipped[0][1]
    assert cached.valid.tolist() == [True, False, False, True]
    assert not cached.array()[1:3].any()
    with pytest.raises(ImageReadError, match=r"broken\.dcm: skipped while caching"):
        cached[1]
    with pytest.raises(ImageReadError, match=r"missing\.png: skipped while caching"):
        cached.batch([0, 2])
    assert cached.batch([3, 0]).shape == (2, 1, *SIZE) and cached.shape == (4, 1, *SIZE)
    np.testing.assert_allclose(cached[3], _expected(image_files[1]), atol=TOLERANCE, rtol=0)


def test_fail_policy_raises_naming_the_file_and_keeps_finished_rows(tmp_path, image_files):
    bad = tmp_path / "broken.png"
    bad.write_text("not a png")
    with pytest.raises(ImageReadError, match=r"broken\.png: not a readable image"):
        build_cache([*image_files[:2], bad], size=SIZE, cache_dir=tmp_path / "c", workers=1)
    assert build_cache(image_files[:2], size=SIZE, cache_dir=tmp_path / "c", workers=1).decoded == 0


def test_reordered_paths_get_an_aligned_view(tmp_path, image_files):
    build_cache(image_files, size=SIZE, cache_dir=tmp_path / "c", workers=1)
    order = [4, 0, 2, 2]
    view = build_cache([image_files[i] for i in order], size=SIZE, cache_dir=tmp_path / "c", workers=1)
    assert view.decoded == 0 and view.array().shape == (4, 1, *SIZE)
    for row, i in enumerate(order):
        np.testing.assert_allclose(view[row], _expected(image_files[i]), atol=TOLERANCE, rtol=0)


def test_unusable_index_is_rebuilt(tmp_path, image_files, caplog):
    build_cache(image_files[:2], size=SIZE, cache_dir=tmp_path / "c", workers=1)
    (store,) = (tmp_path / "c").glob("store-*")
    (store / "index.json").write_text('{"generation": "x", "rows": 99, "content": {}, "files": {}}')
    again = build_cache(image_files[:2], size=SIZE, cache_dir=tmp_path / "c", workers=1)
    assert again.decoded == 2 and "unusable" in caplog.text
    np.testing.assert_allclose(again[1], _expected(image_files[1]), atol=TOLERANCE, rtol=0)


def test_arguments_are_validated(tmp_path, image_files):
    for kwargs in ({"on_error": "ignore"}, {"workers": 0}, {"size": (0, 4)}, {"window": "auto"}):
        with pytest.raises(ConfigError):
            build_cache(image_files, cache_dir=tmp_path, **{"size": SIZE, **kwargs})


def test_pickling_reopens_the_memory_map_instead_of_copying_it(tmp_path, image_files):
    import pickle

    cached = build_cache(image_files, size=(64, 64), cache_dir=tmp_path / "c", workers=1)
    blob = pickle.dumps(cached)
    assert len(blob) < cached.array().nbytes / 10  # the rows are not in the pickle
    restored = pickle.loads(blob)
    assert isinstance(restored.array(), np.memmap)
    np.testing.assert_array_equal(restored.array(), cached.array())
    np.testing.assert_array_equal(restored[2], cached[2])
