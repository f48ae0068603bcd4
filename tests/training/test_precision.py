"""`resolve_precision`: what "auto", "32" and "bf16" become on CPUs and (simulated) GPUs."""

from __future__ import annotations

import pytest
import torch

from radcnn.training import precision


@pytest.fixture
def gpu(monkeypatch):
    """Pretend a CUDA GPU of the given compute capability is present (no GPU on the test machines)."""

    def install(major: int, minor: int = 0) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
        monkeypatch.setattr(torch.version, "hip", None)
        # emulated bf16 makes this True on older GPUs too; radcnn must not rely on it
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)

    return install


@pytest.mark.parametrize(("major", "expected"), [(7, "16-mixed"), (8, "bf16-mixed"), (9, "bf16-mixed")])
def test_auto_on_a_gpu_uses_bf16_only_where_the_hardware_has_it(gpu, major, expected):
    gpu(major)
    assert precision.resolve_precision("auto") == expected


def test_explicit_choices_are_kept_on_a_gpu(gpu):
    gpu(7, 5)
    assert precision.resolve_precision("32") == "32-true"
    assert precision.resolve_precision("bf16") == "bf16-mixed"


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_follows_the_cpu_flags(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision("auto") == expected
