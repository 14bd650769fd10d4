"""Several instances on one database: the background lease, shared nonces, and the anchoring
fence that keeps a material out of two batches."""

import threading

from sqlalchemy import func, select

from chain.client import ChainClient
from materials_api.bank.anchoring import Anchorer
from materials_api.bank.models import AnchorBatch, Material
from materials_api.platform.coordination import DatabaseNonceStore, LeaderLease
from tests.materials_api.test_materials import upload


def test_one_lease_holder_at_a_time_and_take_over_after_the_ttl(runtime):
    first = LeaderLease(runtime.sessions, "background", ttl=1.0, holder="host-a:1:x", clock=runtime.clock)
    second = LeaderLease(runtime.sessions, "background", ttl=1.0, holder="host-b:2:y", clock=runtime.clock)
    assert first.try_acquire() and first.is_leader
    assert not second.try_acquire() and not second.is_leader
    assert first.try_acquire()  # renewing keeps it
    assert first.holder_now()[0] == "host-a:1:x"
    runtime.clock.advance(1.1)  # the holder died: nothing renewed
    assert not first.is_leader  # its own view ends before the database's
    assert second.try_acquire() and second.holder_now()[0] == "host-b:2:y"
    assert not first.try_acquire()
    second.release()  # a clean shutdown hands over at once
    assert first.try_acquire()


def test_leases_are_exclusive_under_contention(runtime):
    winners = []
    barrier = threading.Barrier(6)

    def contend(i):
        lease = LeaderLease(runtime.sessions, "contended", ttl=30.0, holder=f"h:{i}:z")
        barrier.wait()
        if lease.try_acquire():
            winners.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_the_nonce_floor_survives_a_lagging_node_and_is_forgotten_later(runtime):
    store = DatabaseNonceStore(runtime.sessions, memory=0.5, clock=runtime.clock)
    with store.reserve("31337:0xabc", "0x" + "11" * 20) as slot:
        assert slot.floor is None  # nothing known: the node decides
        slot.used(7)
    with store.reserve("31337:0xabc", "0x" + "11" * 20) as slot:
        assert slot.floor == 8  # another instance's node may still say 7
    with store.reserve("31337:0xdef", "0x" + "11" * 20) as slot:
        assert slot.floor is None  # another chain (a restarted dev chain) starts afresh
    runtime.clock.advance(0.6)
    with store.reserve("31337:0xabc", "0x" + "11" * 20) as slot:
        assert slot.floor is None  # a dropped transaction cannot block the account for ever


def test_two_clients_on_one_store_never_reuse_a_nonce(runtime):
    """Two processes' clients (separate in-memory state) sending from one account at once."""
    evm = runtime.chain.client
    other = ChainClient(evm.w3, poll_interval=0.01, timeout=10, nonces=evm.nonces)
    other._serial = evm._serial
    account = runtime.chain.registrar
    hashes = []

    def send(client, n):
        for _ in range(n):
            hashes.append(client.send(account, tx={"to": account.address, "value": 1}, gas=21000))

    threads = [threading.Thread(target=send, args=(client, 5)) for client in (evm, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    receipts = [evm.wait(h) for h in hashes]
    nonces = [evm.w3.eth.get_transaction(h)["nonce"] for h in hashes]
    assert len(set(nonces)) == 10 and all(r.status == 1 for r in receipts)


def test_a_material_batched_by_another_instance_is_never_batched_again(api, keys, runtime):
    api.post("/api/v1/enterprises", json={"uscc": "91350100M000100Y43", "name": "福建示例科技有限公司"},
             headers={"Authorization": keys["registrar"]})
    for i in range(3):
        m = upload(api, keys["enterprise"], content=b"%PDF-1.4\n" + bytes([i])).json()
        assert api.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]}).status_code == 200
    mine = Anchorer(runtime.sessions, runtime.chain, max_wait=0)
    theirs = Anchorer(runtime.sessions, runtime.chain, max_wait=0)
    # Both read the same unbatched rows; the other instance writes its batch first.
    real_write = mine._write_batch

    def outrun_then_write(rows, leaves, tree):
        assert theirs._build_batch(force=True) is not None
        return real_write(rows, leaves, tree)

    mine._write_batch = outrun_then_write
    assert mine._build_batch(force=True) is None
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AnchorBatch)) == 1
        assert s.scalar(select(func.count(func.distinct(Material.batch_id)))) == 1
    theirs.run_once(force=True)
    with runtime.sessions() as s:
        assert {m.state for m in s.scalars(select(Material))} == {"anchored"}
