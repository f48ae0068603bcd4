"""Every command in README.md runs as written: the tour, on its own tiny dataset, with the installed `radcnn`.

The conventions (which blocks run, what an expected refusal looks like) are in this folder's conftest.py. The
README's own sizes are small (40 patients, 64-pixel input, 3 epochs), so nothing is substituted: the test types
what a reader types, in an empty folder. About a minute of CPU on the 2-core machine.
"""

from __future__ import annotations

import pytest


def _readme_commands(guide):
    blocks = [b for b in guide.code_blocks(guide.ROOT / "README.md") if b.lang == "console"]
    found = [c for b in blocks for c in guide.commands(b)]
    return [c for c in found if not c.line.startswith("make ")]


def test_the_readme_shows_a_tour_with_every_step(guide):
    # The tour is the README's promise: synth → train → evaluate → report → explain → predict.
    lines = [c.line for c in _readme_commands(guide)]
    for step in (
        "radcnn synth",
        "radcnn train",
        "radcnn evaluate",
        "radcnn report",
        "radcnn explain",
        "radcnn predict",
    ):
        assert any(line.startswith(step) for line in lines), f"the README tour has no `{step}` command"
    assert any(c.expects_error for c in _readme_commands(guide)), "the tour shows no refusal"


@pytest.mark.slow
def test_every_readme_command_runs_as_written(guide, tmp_path):
    commands = _readme_commands(guide)
    assert len(commands) >= 8
    for command in commands:
        guide.run_command(command, tmp_path)
    # What the tour says it leaves behind is there.
    for made in (
        "data/phantom/labels.csv",
        "runs/tour/best_model.safetensors",
        "runs/tour/metrics.json",
        "runs/tour/report.html",
        "runs/tour-explain/gallery.html",
        "predictions.csv",
    ):
        assert (tmp_path / made).is_file(), f"the tour should have written {made}"
    rows = (tmp_path / "predictions.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("path,nodule_positive,nodule_probability,nodule_threshold")
    assert len(rows) == 1 + 99  # the 99 images the tour's synth line says it wrote
