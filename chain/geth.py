"""The parts of a geth Clique network that are not the network itself: the geth binary (v1.13.15,
the last release that seals Clique blocks), free port blocks, the network's specification as
stored in network.json, and talking to a signer over its IPC socket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GETH_VERSION = "1.13.15"
INSTALL_HINT = "run scripts/install-geth (builds geth v1.13.15 with `go install`)"


class NetworkError(RuntimeError):
    pass


def geth_binary() -> Path:
    """geth from $QIYEMA_GETH, else $(go env GOPATH)/bin/geth (where scripts/install-geth puts
    it), else PATH; it must be v1.13.15, the last release that seals Clique blocks."""
    candidates = []
    if os.environ.get("QIYEMA_GETH"):
        candidates.append(Path(os.environ["QIYEMA_GETH"]))
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    candidates.append(Path(gopath) / "bin" / "geth")
    if shutil.which("geth"):
        candidates.append(Path(shutil.which("geth")))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30).stdout
            if f"Version: {GETH_VERSION}" in out:
                return path
    raise NetworkError(f"geth v{GETH_VERSION} not found: {INSTALL_HINT}")


def free_port_block() -> int:
    """A base port whose p2p (+0..9), authrpc (+100..109) and HTTP (+200..209) ports are free.
    Chosen below Linux's ephemeral range (32768–60999), so ports the system hands out later to
    other processes (port 0 binds, outgoing connections) cannot take one of ours meanwhile: a
    signer added minutes later still finds its ports free."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32500)
        socks = []
        try:
            for p in (base + off + i for off in (0, 100, 200) for i in range(10)):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise NetworkError("no free block of ports on 127.0.0.1")


@dataclass
class NodeSpec:
    name: str
    role: str  # "signer" | "rpc"
    p2p_port: int
    http_port: int | None  # RPC nodes only
    auth_port: int
    enode: str  # enode://<pubkey>@127.0.0.1:<port>
    address: str | None = None  # a signer's sealing account
    retired: bool = False  # voted out: kept for the record, never started again


@dataclass
class NetworkSpec:
    chain_id: int
    period: int
    base_port: int
    nodes: list[NodeSpec] = field(default_factory=list)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise NetworkError(f"no node named {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    running: bool
    peers: int | None
    head: int | None
    address: str | None


def ipc_call(path: Path, payload: dict) -> dict:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(json.dumps(payload).encode())
        buf = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                return json.loads(buf)
            except ValueError:
                continue
    return json.loads(buf)


def write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
