"""Clique's known stall, found and undone (go-ethereum #18402, never fixed in geth; EIP-3436).

Two signers that seal the same height out of turn (difficulty 1 each) fork the chain with equal
total difficulty. Each keeps its own block (geth prefers blocks it sealed itself), and on each
side the only signer allowed to seal next is on the other side: nothing moves again by itself.
With three signers this needs only one of them to stop at the wrong moment; more signers make
it rarer, never impossible.

`find_stall` watches the running signers' heads for a while: a stall is no head moving and the
heads on more than one chain. `heal` keeps one side, chosen as EIP-3436 would (the highest total
difficulty, then the side more signers hold, then the lowest hash), stops sealing on the others,
rewinds them to the last block all sides share (`debug_setHead`, over IPC), waits until they
have imported the kept side's blocks, and lets them seal again. A chain that is merely halted
(too few signers running, every head the same block) is not a stall: nothing is rewound.
`Watchdog` does both on a thread, as `qiyema network watch` does for an operator.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .geth import NetworkError, NodeSpec

if TYPE_CHECKING:
    from .network import GethNetwork

log = logging.getLogger("qiyema.network")

MAX_REWIND = 64  # deeper than this is no Clique stall (those are a block or two): never rewound


@dataclass(frozen=True)
class Head:
    node: str
    number: int
    hash: str
    total_difficulty: int


@dataclass(frozen=True)
class Stall:
    """Signers stuck on different chains: `kept` goes on, `rewound` go back to `ancestor`."""

    kept: list[Head]
    rewound: list[Head]
    ancestor: int

    def describe(self) -> str:
        side = lambda heads: ", ".join(f"{h.node} at {h.number} {h.hash[:10]}" for h in heads)  # noqa: E731
        return f"signers forked after block {self.ancestor}: kept {side(self.kept)}; rewound {side(self.rewound)}"


def heads(net: "GethNetwork") -> list[Head]:
    """The head of every running signer (a signer that does not answer is left out)."""
    out = []
    for node in _running_signers(net):
        block = net.call(node, "eth_getBlockByNumber", ["latest", False])
        if block:
            out.append(Head(node.name, int(block["number"], 16), block["hash"], int(block["totalDifficulty"], 16)))
    return out


def find_stall(net: "GethNetwork", window: float, poll: float = 0.5) -> Stall | None:
    """Watch the signers' heads for `window` seconds: a Stall if none moved and they are on
    different chains, else None (sealing goes on, or the chain is halted on one block)."""
    first = {h.node: h.hash for h in heads(net)}
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        time.sleep(poll)
        if {h.node: h.hash for h in heads(net)} != first:
            return None
    now = heads(net)
    if len(now) < 2 or {h.node: h.hash for h in now} != first:
        return None
    sides = _sides(net, now)
    if len(sides) < 2:
        return None
    sides.sort(key=lambda side: (-side[0].total_difficulty, -len(side), side[0].hash))
    kept, rewound = sides[0], [h for side in sides[1:] for h in side]
    ancestor = min(_ancestor(net, kept[0], side[0]) for side in sides[1:])
    return Stall(kept, rewound, ancestor)


def heal(net: "GethNetwork", stall: Stall, timeout: float = 90.0) -> None:
    """Rewind the signers of the sides not kept, let them import the kept side, seal again."""
    spec = net.spec()
    target = stall.kept[0]
    kept_nodes = [spec.node(h.node) for h in stall.kept]
    for h in stall.rewound:
        node = spec.node(h.node)
        net.call(node, "miner_stop", [])  # else it seals its own block on the ancestor again
        net.call(node, "debug_setHead", [hex(stall.ancestor)])
    deadline = time.monotonic() + timeout
    nudge_at = time.monotonic() + 10
    waiting = {h.node for h in stall.rewound}
    while waiting:
        for name in list(waiting):
            block = net.call(spec.node(name), "eth_getBlockByNumber", [hex(target.number), False])
            if block and block["hash"] == target.hash:
                net.call(spec.node(name), "miner_start", [])
                waiting.discard(name)
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise NetworkError(f"{', '.join(sorted(waiting))} did not import the kept chain (block {target.number} "
                               f"{target.hash}) within {timeout:.0f}s after the rewind; they do not seal until they do")
        if time.monotonic() > nudge_at:  # a new handshake with a peer ahead starts a sync at once
            for name in waiting:
                for peer in kept_nodes:
                    net.call(spec.node(name), "admin_removePeer", [peer.enode])
                    net.call(spec.node(name), "admin_addPeer", [peer.enode])
            nudge_at = time.monotonic() + 10
        time.sleep(0.25)


class Watchdog:
    """Finds and heals stalls until stopped; `on_heal` is told of each one healed."""

    def __init__(self, net: "GethNetwork", window: float, on_heal: Callable[[Stall], None] | None = None):
        self.net = net
        self.window = window
        self.on_heal = on_heal
        self.healed: list[Stall] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="qiyema-clique-watchdog", daemon=True)

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.window + 100)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                stall = find_stall(self.net, self.window)
                if stall is not None and not self._stop.is_set():
                    log.warning("Clique stall: %s; healing", stall.describe())
                    heal(self.net, stall)
                    self.healed.append(stall)
                    if self.on_heal is not None:
                        self.on_heal(stall)
            except NetworkError as exc:  # a node going down meanwhile: look again
                log.warning("Clique watchdog: %s", exc)
                self._stop.wait(1.0)


def _running_signers(net: "GethNetwork") -> list[NodeSpec]:
    return [n for n in net.spec().nodes if n.role == "signer" and not n.retired and net.pid(n.name)]


def _block_hash(net: "GethNetwork", node: NodeSpec, number: int) -> str | None:
    block = net.call(node, "eth_getBlockByNumber", [hex(number), False])
    return block["hash"] if block else None


def _sides(net: "GethNetwork", now: list[Head]) -> list[list[Head]]:
    """The heads grouped by chain: a head below another on the same chain (a signer still
    importing) joins that chain's side."""
    spec = net.spec()
    sides: list[list[Head]] = []
    for head in sorted(now, key=lambda h: -h.number):
        for side in sides:
            if _block_hash(net, spec.node(side[0].node), head.number) == head.hash:
                side.append(head)
                break
        else:
            sides.append([head])
    return sides


def _ancestor(net: "GethNetwork", a: Head, b: Head) -> int:
    spec = net.spec()
    node_a, node_b = spec.node(a.node), spec.node(b.node)
    number = min(a.number, b.number)
    for n in range(number, max(-1, number - MAX_REWIND), -1):
        if _block_hash(net, node_a, n) == _block_hash(net, node_b, n):
            return n
    raise NetworkError(f"{a.node} and {b.node} share no block in the last {MAX_REWIND}: not a Clique stall, "
                       "nothing rewound (compare their chains by hand)")
