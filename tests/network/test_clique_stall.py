"""Clique's stall (go-ethereum #18402), made on purpose on a real geth network, found and healed.

Three signers X, Y, Z. X seals a block H while Y and Z do not, and X is in turn for H+1; then X
stops. Y and Z, cut off from each other, each seal H+1 out of turn (difficulty 1 each). Joined
again, each keeps its own block and neither may seal H+2 on its own side: the chain stalls for
good, as it does when a signer crashes at the wrong moment (what CI once met)."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from chain.clique_stall import Watchdog, find_stall, heal, heads
from chain.geth import free_port_block
from chain.network import GethNetwork

pytestmark = [pytest.mark.network, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    built = subprocess.run([str(REPO / "scripts" / "install-geth")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, f"geth could not be built: {built.stderr[-2000:]}"
    os.environ["QIYEMA_GETH"] = built.stdout.strip().splitlines()[-1]
    n = GethNetwork(tmp_path_factory.mktemp("stall") / "net")
    n.create(signers=3, rpc_nodes=1, period=1, base_port=free_port_block(), fund=[])
    n.up()
    yield n
    n.down()


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


def make_stall(net):
    spec = net.spec()
    x, y, z = (spec.node(f"signer-{i}") for i in (1, 2, 3))
    rpc = spec.node("rpc-1")
    order = sorted(n.address.lower() for n in (x, y, z))  # Clique's turn order: signers by address
    in_turn_x = order.index(x.address.lower())

    def head(node):
        return int(net.call(node, "eth_blockNumber", []), 16)

    def block_hash(node, number):
        block = net.call(node, "eth_getBlockByNumber", [hex(number), False])
        return block and block["hash"]

    def quiet(node, seconds=2.5):
        """The head, once it has not moved for `seconds`."""
        last, since = head(node), time.monotonic()
        while time.monotonic() - since < seconds:
            time.sleep(0.1)
            if (h := head(node)) != last:
                last, since = h, time.monotonic()
        return last

    # Signers that started sealing side by side may have forked already: all on one chain first.
    wait(lambda: len({s.hash for s in heads(net)}) == 1 and min(s.number for s in heads(net)) > 2, 60,
         "the signers agree on their head")
    net.call(y, "miner_stop", [])
    net.call(z, "miner_stop", [])
    for _ in range(12):
        h = quiet(x)  # X alone seals until it may not: the head is then X's
        assert net.call(x, "clique_getSigner", [hex(h)]).lower() == x.address.lower()
        if (h + 1) % 3 == in_turn_x:
            break
        net.call(y, "miner_start", [])  # one block by Y moves the turn on
        wait(lambda: head(x) > h, 10, "Y sealed a block")
        net.call(y, "miner_stop", [])
    else:
        raise AssertionError("X never sealed a block before its own turn")
    at_h = block_hash(x, h)
    # A node that missed the block's announcement fetches it at geth's next sync cycle (10 s), and
    # on two busy cores a cycle can slip: room for a few of them.
    wait(lambda: all(head(n) == h and block_hash(n, h) == at_h for n in (y, z, rpc)), 60, "every node at X's block")
    net.stop_node(x.name)
    net.stop_node(rpc.name)  # it would carry blocks between Y and Z (and it has no admin API to cut it off)
    def cut_off():
        # Again until it holds: a dial already under way when the peer left the static list
        # still connects (and then stays, as a peer no longer static).
        net.call(z, "admin_removePeer", [y.enode])
        net.call(y, "admin_removePeer", [z.enode])
        time.sleep(0.3)
        return net.call(z, "net_peerCount", []) == "0x0"

    wait(cut_off, 30, "Z cut off")
    net.call(y, "miner_start", [])
    net.call(z, "miner_start", [])
    wait(lambda: head(y) == h + 1 and head(z) == h + 1, 20, "Y and Z each sealed block H+1")
    net.call(z, "admin_addPeer", [y.enode])
    net.call(y, "admin_addPeer", [z.enode])
    net.start_node(rpc.name)
    # Joined again (a watchdog healing meanwhile may be re-dialling Z's peers: at least one).
    wait(lambda: int(net.call(z, "net_peerCount", []) or "0x0", 16) >= 1, 20, "Z joined again")
    return h


def test_a_stalled_clique_fork_is_found_and_healed_and_sealing_goes_on(net):
    h = make_stall(net)
    time.sleep(8)  # joined, neither side gives way: it stays stalled
    stuck = heads(net)
    assert [s.number for s in stuck] == [h + 1, h + 1] and stuck[0].hash != stuck[1].hash
    stall = find_stall(net, window=4)
    assert stall is not None and stall.ancestor == h, stall
    assert len(stall.kept) == 1 and len(stall.rewound) == 1
    assert stall.kept[0].hash == min(s.hash for s in stuck)  # equal difficulty, equal sides: the lowest hash
    heal(net, stall)
    wait(lambda: min(s.number for s in heads(net)) >= h + 4, 30, "sealing went on")
    spec = net.spec()
    kept_at = net.call(spec.node("rpc-1"), "eth_getBlockByNumber", [hex(h + 1), False])["hash"]
    assert kept_at == stall.kept[0].hash  # the RPC node follows the kept chain
    net.start_node("signer-1")  # the stopped signer comes back onto the healed chain
    assert find_stall(net, window=3) is None


def test_the_watchdog_heals_a_stall_by_itself_and_leaves_a_halt_alone(net):
    healed = []
    dog = Watchdog(net, window=4, on_heal=healed.append).start()
    try:
        h = make_stall(net)
        wait(lambda: healed, 60, "the watchdog healed the stall")
        wait(lambda: min(s.number for s in heads(net)) >= h + 4, 30, "sealing went on")
        # Two signers of three down: a halt on one block, nothing to heal.
        net.stop_node("signer-3")
        halted = wait(lambda: find_stall(net, window=4) is None and heads(net), 30, "a halt seen")
        assert len({s.hash for s in halted}) <= 1
        assert len(healed) == 1
    finally:
        dog.stop()
        for name in ("signer-1", "signer-3"):
            net.start_node(name)
