"""Starting and stopping the deployment engine's processes by PID, children included.

Flower's SuperLink and SuperNodes start helper processes (``flower-superexec``, then ``flwr-serverapp`` /
``flwr-clientapp``) in NEW sessions, so they survive a signal to their parent's process group; `stop` therefore
collects the whole tree of descendants from /proc (Linux) before signalling, then terminates every one of them
by PID (SIGTERM, then SIGKILL after a grace period). Nothing is killed by name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from radcnn.errors import FederatedError

log = logging.getLogger(__name__)


def flower_environment(flwr_home: str | Path | None = None) -> dict[str, str]:
    """This environment plus: the venv's bin first on PATH (Flower starts its helpers by name), no telemetry,
    radcnn importable in every helper process, and FLWR_HOME when given."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    if flwr_home:
        env["FLWR_HOME"] = str(flwr_home)
    return env


def descendants(pid: int) -> list[int]:
    """Every living descendant of `pid` (children first-level first), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait() remains


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log_file: Path
    known: set[int] = field(default_factory=set)  # descendants seen so far (helpers may outlive their parent)

    @property
    def pid(self) -> int:
        return self.process.pid

    def remember_children(self) -> None:
        self.known.update(descendants(self.pid))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, command: list[str], log_file: str | Path, env: dict[str, str]) -> Started:
    log_file = Path(log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.info("started %s (pid %d): %s", name, process.pid, " ".join(command))
    return Started(name, process, log_file)


def stop(processes: list[Started], *, grace: float = 10.0) -> list[int]:
    """Terminate each process and all its descendants by PID; returns the PIDs that needed SIGKILL."""
    pids: list[int] = []
    for started in processes:
        started.remember_children()
        pids += [started.pid, *sorted(started.known)]
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):  # exited between the check and the signal
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        for started in processes:
            started.process.poll()  # reap our direct children
        time.sleep(0.2)
    killed = [p for p in pids if _alive(p)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):  # exited on its own after the grace period
            os.kill(pid, signal.SIGKILL)
    for started in processes:
        try:
            started.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise FederatedError(f"{started.name} (pid {started.pid}) did not stop") from None
    if killed:
        log.warning("had to SIGKILL %s", ", ".join(map(str, killed)))
    return killed


def wait_for_log(started: Started, text: str, timeout: float) -> None:
    """Wait until `text` appears in the process's log; FederatedError (with the log's tail) if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started.remember_children()
        if text in started.log_file.read_text(errors="replace"):
            return
        if started.process.poll() is not None:
            raise FederatedError(
                f"{started.name} exited with code {started.process.returncode} before it was ready:\n"
                f"{started.log_tail()}"
            )
        time.sleep(0.5)
    raise FederatedError(f"{started.name} was not ready after {timeout:.0f} s:\n{started.log_tail()}")
