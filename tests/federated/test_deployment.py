"""The real deployment engine on loopback with TLS: certificates made for the test, a SuperLink and three
SuperNodes started as separate processes with the documented `radcnn federated` commands, the app submitted with
`radcnn federated submit` (`flwr run`), run to completion, and every process stopped by PID — then nothing may be
left running. Bad input on the way: a CA that did not sign the SuperLink's certificate, a port already in use."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("flwr")

pytestmark = pytest.mark.slow  # Flower's engines and real training: a minute or two each

from radcnn.errors import FederatedError  # noqa: E402
from radcnn.federated import processes  # noqa: E402
from radcnn.federated.deploy import (  # noqa: E402
    free_port,
    generate_certificates,
    probe_superlink,
)
from radcnn.runs import FEDERATED_HISTORY, RunDir  # noqa: E402

RADCNN = [sys.executable, "-m", "radcnn.cli.app"]  # `radcnn`, from this checkout


def _wait_for_superlink(address: str, ca, started, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe_superlink(address, ca, timeout=5)
            return
        except FederatedError:
            if time.monotonic() > deadline or started.process.poll() is not None:
                raise FederatedError(f"the SuperLink did not come up:\n{started.log_tail()}") from None
            started.remember_children()
            time.sleep(1)


def test_superlink_and_three_supernodes_with_tls(fed_config, tmp_path):
    certs_dir = tmp_path / "certs"
    assert subprocess.run([*RADCNN, "federated", "certs", str(certs_dir)], check=False).returncode == 0
    ca = certs_dir / "ca.crt"
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = processes.flower_environment()
    started = []
    try:
        link = processes.start(
            "superlink", [*RADCNN, "federated", "superlink", "--certs", str(certs_dir), "--port", str(port)],
            tmp_path / "superlink.log", env,
        )  # fmt: skip
        started.append(link)
        _wait_for_superlink(address, ca, link)
        for k in range(3):
            node = processes.start(
                f"supernode {k}",
                [*RADCNN, "federated", "join", "--superlink", address, "--ca", str(ca), "--partition-id", str(k),
                 "--num-partitions", "3", "--port", str(free_port())],
                tmp_path / f"supernode{k}.log", env,
            )  # fmt: skip
            started.append(node)

        out = tmp_path / "run"
        submitted = subprocess.run(
            [*RADCNN, "federated", "submit", "--config", str(fed_config), "--out", str(out), "--superlink", address,
             "--ca", str(ca), "--rounds", "2", "--set", "min-available-nodes=3", "--set", "min-train-nodes=3",
             "--set", "min-evaluate-nodes=3"],
            env=env, capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
        assert "federated run written to" in submitted.stdout

        run = RunDir.open(out)
        history = run.read_json(FEDERATED_HISTORY)
        assert [r["round"] for r in history["rounds"]] == [1, 2]
        assert all(r["accepted"] == 3 and r["rejected"] == [] for r in history["rounds"])
        assert sorted(c["name"] for c in history["rounds"][-1]["clients"]) == ["site_a", "site_b", "site_c"]
        model, spec = run.load_model()
        assert spec.label_names == ("nodule",) and json.loads(run.file("best.json").read_text())["round"] in (1, 2)

        # a CA that did not sign the SuperLink's certificate: refused with the reason, before any SuperNode starts
        other = generate_certificates(tmp_path / "other")
        with pytest.raises(FederatedError, match="does not verify against"):
            probe_superlink(address, other.ca)
        joined = subprocess.run(
            [*RADCNN, "federated", "join", "--superlink", address, "--ca", str(other.ca), "--partition-id", "0",
             "--num-partitions", "3"], env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert joined.returncode == 1 and "certificate that does not verify" in joined.stderr
        assert "Traceback" not in joined.stderr

        # the SuperLink's port is taken: a second SuperLink says so and starts nothing
        second = subprocess.run(
            [*RADCNN, "federated", "superlink", "--certs", str(certs_dir), "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert second.returncode == 1 and f"port {port} on 127.0.0.1 is already in use" in second.stderr
    finally:
        for started_process in started:
            started_process.remember_children()
        every = [p for s in started for p in (s.pid, *s.known)]
        processes.stop(started)
    time.sleep(1)
    assert not [pid for pid in every if processes._alive(pid)], "processes left running"
