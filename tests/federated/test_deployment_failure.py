"""The deployment engine when a hospital drops out: three SuperNodes (TLS, loopback), one killed in the middle of
round 2 (its SuperNode and the ClientApp process training for it, by PID). The round completes with the two
remaining updates because min-train-nodes is 2, the run says which client failed, and nothing is left running."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

pytestmark = pytest.mark.slow  # a real federation, waiting for Flower to notice a dead node

from radcnn.errors import FederatedError  # noqa: E402
from radcnn.federated import processes  # noqa: E402
from radcnn.federated.deploy import free_port, generate_certificates, probe_superlink  # noqa: E402
from radcnn.runs import FEDERATED_HISTORY, RunDir, partial_dir  # noqa: E402

RADCNN = [sys.executable, "-m", "radcnn.cli.app"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_supernode_dying_mid_round(fed_config, tmp_path):
    certs = generate_certificates(tmp_path / "certs")
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = processes.flower_environment()
    started = []
    submitted = None
    try:
        link = processes.start("superlink", [*RADCNN, "federated", "superlink", "--certs", str(tmp_path / "certs"),
                                             "--port", str(port)], tmp_path / "superlink.log", env)  # fmt: skip
        started.append(link)
        deadline = time.monotonic() + 120
        while True:
            try:
                probe_superlink(address, certs.ca, timeout=5)
                break
            except FederatedError:
                assert time.monotonic() < deadline and link.process.poll() is None, link.log_tail()
                time.sleep(1)
        nodes = []
        for k in range(3):
            nodes.append(processes.start(
                f"supernode {k}",
                [*RADCNN, "federated", "join", "--superlink", address, "--ca", str(certs.ca), "--partition-id", str(k),
                 "--num-partitions", "3", "--port", str(free_port())],
                tmp_path / f"supernode{k}.log", env,
            ))  # fmt: skip
        started += nodes
        out = tmp_path / "run"
        submitted = subprocess.Popen(
            [*RADCNN, "federated", "submit", "--config", str(fed_config), "--out", str(out), "--superlink", address,
             "--ca", str(certs.ca), "--rounds", "2", "--set", "min-available-nodes=2", "--set", "min-train-nodes=2",
             "--set", "min-evaluate-nodes=2", "--set", "round-timeout=150"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        # wait until round 1 is recorded, then until client 2 runs a ClientApp for round 2, and kill that client
        history = partial_dir(out) / FEDERATED_HISTORY
        deadline = time.monotonic() + 300
        while not history.is_file():
            if submitted.poll() is not None:
                pytest.fail(f"submit ended before round 1 finished:\n{submitted.stdout.read()[-4000:]}")
            assert time.monotonic() < deadline, "round 1 did not finish"
            time.sleep(1)
        victim = nodes[2]
        while True:
            victim.remember_children()
            if any("flwr-clientapp" in _cmdline(p) for p in processes.descendants(victim.pid)):
                break
            assert time.monotonic() < deadline and submitted.poll() is None, "round 2 never reached client 2"
            time.sleep(0.3)
        processes.stop([victim], grace=2)
        output, _ = submitted.communicate(timeout=400)
        assert submitted.returncode == 0, output[-4000:]
        rounds = RunDir.open(out).read_json(FEDERATED_HISTORY)["rounds"]
        second = rounds[1]
        assert second["aggregated"] and second["accepted"] == 2
        assert sorted(c["name"] for c in second["clients"]) == ["site_a", "site_b"]
        assert second["rejected"] or second["sampled"] > second["replies"]  # the dead client is accounted for
    finally:
        if submitted is not None and submitted.poll() is None:
            submitted.kill()
            submitted.wait()
        for s in started:
            s.remember_children()
        every = [p for s in started for p in (s.pid, *s.known)]
        processes.stop(started)
    time.sleep(1)
    assert not [pid for pid in every if processes._alive(pid)], "processes left running"
