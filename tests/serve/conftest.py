"""Fixtures for serving tests: one tiny trained run (phantom DICOM, seed CNN at 48×48) shared by the session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SIZE = 48


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Path:
    """A small phantom DICOM dataset (radcnn.phantom.synth): 12 patients, 64×64 images, labels.csv."""
    from radcnn.phantom.synth import synthesize_dataset

    out = tmp_path_factory.mktemp("serve_data") / "phantom"
    synthesize_dataset(out, n_patients=12, size=64, seed=3)
    return out


@pytest.fixture(scope="session")
def run_dir(phantom, tmp_path_factory) -> Path:
    """A finished run directory trained for 2 epochs on the phantom (a few seconds on one core)."""
    from radcnn.config import DataConfig, RunConfig, TrainConfig
    from radcnn.training.fit import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = RunConfig(
            data=DataConfig(source=str(phantom / "labels.csv"), image_size=(SIZE, SIZE), workers=1),
            train=TrainConfig(epochs=2, batch_size=16, precision="32", progress_bar=False),
        )
        run = tmp_path_factory.mktemp("serve_run") / "run"
        fit(config, run)
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def phantom_dicoms(phantom) -> list[Path]:
    return sorted((phantom / "images").rglob("*.dcm"))


def _free_port() -> int:
    """A loopback TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- real processes: started and stopped by PID, loopback only ------------------------------------------------


class Process:
    """A child process with its output in a log file; `stop()` sends SIGTERM to its PID, then SIGKILL."""

    def __init__(self, args: list[str], log_path: Path, *, cwd: Path | None = None):
        self.args, self.log_path = args, log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd)
        self.pid = self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, ready, what: str, timeout: float = 90.0) -> None:
        """Poll `ready()` until true; fail with the process log if it exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.args[0]} exited with {self.popen.returncode} before {what}:\n{self.log()}")
            if ready():
                return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.args[0]}: no {what} after {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()
        return self.popen.returncode


def _radcnn_command(*args: str) -> list[str]:
    """The installed `radcnn` console script of this interpreter's environment."""
    return [str(Path(sys.executable).with_name("radcnn")), *args]


def http_ok(url: str, headers: dict | None = None) -> bool:
    import httpx

    try:
        return httpx.get(url, headers=headers, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def token() -> str:
    """The bearer token of the test servers."""
    return TOKEN


@pytest.fixture(scope="session")
def server(run_dir, tmp_path_factory):
    """`radcnn serve RUN --token-file F` as a real process on a free loopback port: (base URL, process)."""
    work = tmp_path_factory.mktemp("server")
    token_file = work / "token.txt"
    token_file.write_text(TOKEN + "\n")
    port = _free_port()
    process = Process(
        _radcnn_command(
            "serve",
            str(run_dir),
            "--port",
            str(port),
            "--token-file",
            str(token_file),
            "--max-upload-mb",
            "1",
            "--batch-wait-ms",
            "50",
        ),
        work / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(lambda: http_ok(f"{base}/v1/health"), "answer on /v1/health")
        yield base, process
    finally:
        process.stop()


# Helpers as fixtures: test modules cannot import conftest (pytest runs with --import-mode=importlib).


@pytest.fixture(scope="session")
def free_port():
    """`free_port()` → a loopback TCP port that is free right now."""
    return _free_port


@pytest.fixture(scope="session")
def process():
    """The `Process` class: `process(args, log_path)` starts a child; `.stop()` ends it by PID."""
    return Process


@pytest.fixture(scope="session")
def radcnn_command():
    """`radcnn_command("serve", ...)` → argv of this environment's `radcnn` script."""
    return _radcnn_command
