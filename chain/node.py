"""The managed local node: anvil from the npm package @foundry-rs/anvil, bound to 127.0.0.1,
with its state kept on disk so a restart keeps every registration."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import time
from pathlib import Path

import requests

from .compile import NODE_MODULES


class NodeError(RuntimeError):
    pass


def anvil_binary() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    system = platform.system().lower()
    path = NODE_MODULES / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not path.exists():
        raise NodeError(f"anvil is not installed at {path}: run `npm ci` in the project root")
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours still "exists": reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM (a clean shutdown writes the node's state), SIGKILL after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)


class AnvilNode:
    def __init__(self, data_dir: Path, *, port: int = 8545, chain_id: int = 31337,
                 state_interval: int = 60, block_time: float | None = None, history: int = 256):
        self.data_dir = Path(data_dir)
        self.port = port
        self.chain_id = chain_id
        self.state_interval = state_interval
        self.block_time = block_time
        # Historical states kept in memory: unbounded, anvil grows by gigabytes on a large
        # register and spends its time dumping them; the service only reads the latest state.
        self.history = history
        self.pid_file = self.data_dir / "anvil.pid"
        self.state_file = self.data_dir / "anvil-state.json"
        self.log_file = self.data_dir / "anvil.log"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def answers(self) -> bool:
        try:
            r = requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                              timeout=1)
            return int(r.json()["result"], 16) == self.chain_id
        except (requests.RequestException, ValueError, KeyError):
            return False

    def start(self, timeout: float = 30.0) -> bool:
        """Start the node unless ours is already running; returns True if this call started it."""
        if self.pid() and self.answers():
            return False
        if self.answers():
            raise NodeError(f"another node answers on {self.url} with chain id {self.chain_id}; "
                            f"stop it or set QIYEMA_NODE_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(self.chain_id), "--state", str(self.state_file),
            "--state-interval", str(self.state_interval), "--prune-history", str(self.history),
            "--accounts", "2", "--silent",
        ]
        if self.block_time:  # a block at least this often, and one on every transaction still
            cmd += ["--block-time", str(self.block_time), "--mixed-mining"]
        log = open(self.log_file, "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self._proc = proc  # keep the handle so the child is reaped when it stops
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise NodeError(f"anvil exited with {proc.returncode}; see {self.log_file}")
            if self.answers():
                return True
            time.sleep(0.1)
        self.stop()
        raise NodeError(f"anvil did not answer on {self.url} within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop our node by its PID (SIGTERM, so anvil writes its state); True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        stop_pid(pid, timeout)
        if self._proc is not None:
            self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True
