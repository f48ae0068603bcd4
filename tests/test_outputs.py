"""Output folders: radcnn replaces only what it wrote, unless told otherwise, and never half-way."""

import pytest

from radcnn.errors import RunDirectoryError
from radcnn.outputs import claim, mark, owner, replace_directory


def test_claim_accepts_new_empty_and_own_folders_only(tmp_path):
    claim(tmp_path / "new", "demo")
    (tmp_path / "empty").mkdir()
    claim(tmp_path / "empty", "demo")
    own = tmp_path / "own"
    own.mkdir()
    (own / "x").write_text("1")
    mark(own, "demo")
    assert owner(own) == "demo"
    claim(own, "demo")
    with pytest.raises(RunDirectoryError, match="holds files radcnn explain did not write"):
        claim(own, "explain")  # written by another command
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for name in "abcde":
        (foreign / name).write_text(name)
    with pytest.raises(RunDirectoryError, match=r"did not write \(a, b, c and 2 more\); choose another --out"):
        claim(foreign, "demo")
    claim(foreign, "demo", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is not a folder"):
        claim(tmp_path / "file", "demo")


def test_replace_directory_swaps_only_complete_folders(tmp_path):
    final, new = tmp_path / "out", tmp_path / ".out.partial"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_directory(new, final)
    assert [p.name for p in final.iterdir()] == ["new.txt"] and not new.exists()
    assert not (tmp_path / ".out.old").exists()
