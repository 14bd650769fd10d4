"""The standalone material verifier (`qiyema material verify`, `verify-batch`), against anvil.

    .venv/bin/python -m bench.standalone_verify_bench --leaves 1000 --concurrency 16 [--tree-hash sm3]

One batch of `--leaves` materials is anchored (1% of its leaves revoked) and each leaf's proof
bundle built as the service builds it. Measured in one run, on the same node:
- the floor: a raw keep-alive `eth_call` of a trivial view (`NOTARY_ROLE()`), sequential;
- sequential `verify_material` per bundle (integrity, proof, anchor, issuer, status: one chain
  read), median and p99;
- `--concurrency` threads and as many processes (each verifying every bundle), throughput;
- batch mode (`verify_materials`, one chain read per 500 leaves), bundles per second.
Each figure is printed with its ratio to the floor.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import secrets
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.chain_bench import free_port, pct, setup


def build(client, ledger, writer, n: int, tree_hash: str = "keccak256"):
    from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle

    contents = [b"%PDF-1.7\n" + secrets.token_bytes(64) for _ in range(n)]
    entity = secrets.token_bytes(32)
    leaves = [LeafInput(hashlib.sha256(c).digest(), entity, "lease_contract", 1, 0, i, secrets.token_bytes(32))
              for i, c in enumerate(contents)]
    tree = MerkleTree([leaf.hash(tree_hash) for leaf in leaves], tree_hash)
    receipt = ledger.anchor(writer, tree.root, n)
    revoked = list(range(0, n, 100))
    ledger.revoke_leaves(writer, tree.root, revoked)
    anchor = Anchor(client.chain_id, ledger.deployment.address, receipt.tx_hash, receipt.block_number)
    bundles = [ProofBundle(leaf, tree.proof(i), tree.root, anchor, digest=tree_hash) for i, leaf in enumerate(leaves)]
    return [(b.to_json(), leaf.content_sha256) for b, leaf in zip(bundles, leaves)], len(revoked)


def _process_worker(args):
    """One process of the multi-process run: verify every bundle, return (count, seconds)."""
    url, items, pinned = args
    from chain.client import ChainClient
    from chain.material_verify import verify_material
    from chain.proof import ProofBundle
    from chain.trust import Trust, TrustList

    client = ChainClient.from_url(url)
    client.chain_id  # noqa: B018 - asked once, as any long-lived verifier would
    trust: Trust = TrustList.from_json(pinned[0]).check(pinned[1])  # what a verifier pins, checked once
    bundles = [(ProofBundle.from_json(b), d) for b, d in items]
    t = time.perf_counter()
    for bundle, digest in bundles:
        verify_material(bundle, content_sha256=digest, client=client, trust=trust)
    return len(bundles), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leaves", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batch-rounds", type=int, default=20, help="batch mode verifies the leaves this many times")
    ap.add_argument("--tree-hash", choices=["keccak256", "sm3"], default="keccak256",
                    help="sm3: the gm profile's bundles (version 3)")
    a = ap.parse_args()

    from chain.client import ChainClient
    from chain.material_verify import verify_material, verify_materials
    from chain.node import AnvilNode
    from chain.proof import ProofBundle
    from chain.rpc import JsonRpc

    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode(Path(tmp) / "anvil", port=free_port())
        node.start()
        try:
            client = ChainClient.from_url(node.url)
            ledger, writer = setup(client, Path(tmp))
            items, revoked = build(client, ledger, writer, a.leaves, a.tree_hash)
            # Pinned as every verifier pins: a governor-signed trust list, checked once.
            from chain.trust import TrustedDeployment, TrustList

            d = ledger.deployment
            trust_list = TrustList(writer.address, 0, [TrustedDeployment(d.chain_id, d.address, d.code_hash,
                                                                         d.block_number)],
                                   profile="gm" if a.tree_hash == "sm3" else "intl")
            trust_list.sign(writer, int(time.time()))
            pinned = (trust_list.to_json(), writer.address)
            trust = trust_list.check(writer.address)
            bundles = [(ProofBundle.from_json(b), d) for b, d in items]
            rows = []

            # The floor: one raw keep-alive eth_call of a trivial view.
            rpc = JsonRpc(node.url)
            call = {"to": ledger.deployment.address, "data": "0x" + ledger.contract.functions.NOTARY_ROLE()
                    ._encode_transaction_data().removeprefix("0x")}
            for _ in range(200):
                rpc.request("eth_call", [call, "latest"])
            floor = []
            for _ in range(a.leaves):
                t = time.perf_counter()
                rpc.request("eth_call", [call, "latest"])
                floor.append((time.perf_counter() - t) * 1000)
            floor_ms = statistics.median(floor)
            rows.append(("raw keep-alive eth_call (floor), sequential", f"median {floor_ms:.3f} ms, "
                         f"p99 {pct(floor, 99):.3f} ms", 1.0))

            # Sequential verification.
            for bundle, digest in bundles[:100]:
                verify_material(bundle, content_sha256=digest, client=client, trust=trust)
            seq, statuses = [], {}
            for bundle, digest in bundles:
                t = time.perf_counter()
                v = verify_material(bundle, content_sha256=digest, client=client, trust=trust)
                seq.append((time.perf_counter() - t) * 1000)
                statuses[v.status.value] = statuses.get(v.status.value, 0) + 1
            assert statuses.get("INVALID", 0) == revoked and statuses.get("VALID", 0) == a.leaves - revoked, statuses
            med = statistics.median(seq)
            rows.append(("verify_material, sequential", f"median {med:.3f} ms, p99 {pct(seq, 99):.3f} ms",
                         med / floor_ms))

            # Concurrent: threads in one process (one GIL), then processes.
            def chunk(k):
                for bundle, digest in bundles[k::a.concurrency]:
                    verify_material(bundle, content_sha256=digest, client=client, trust=trust)
            rounds = 3
            t = time.perf_counter()
            with ThreadPoolExecutor(a.concurrency) as ex:
                for _ in range(rounds):
                    list(ex.map(chunk, range(a.concurrency)))
            per_s = rounds * a.leaves / (time.perf_counter() - t)
            rows.append((f"verify_material, {a.concurrency} threads in one process", f"{per_s:,.0f}/s",
                         per_s * floor_ms / 1000))
            with multiprocessing.get_context("spawn").Pool(a.concurrency) as pool:
                pool.map(_process_worker, [(node.url, items[:10], pinned)] * a.concurrency)  # start-up out of the figure
                t = time.perf_counter()
                done = pool.map(_process_worker, [(node.url, items, pinned)] * a.concurrency)
                wall = time.perf_counter() - t
            per_s = sum(n for n, _ in done) / wall
            rows.append((f"verify_material, {a.concurrency} processes (os.cpu_count() = {os.cpu_count()})",
                         f"{per_s:,.0f}/s", per_s * floor_ms / 1000))

            # Batch mode.
            verify_materials(bundles, client=client, trust=trust)
            t = time.perf_counter()
            for _ in range(a.batch_rounds):
                out = verify_materials(bundles, client=client, trust=trust)
            per_s = a.batch_rounds * a.leaves / (time.perf_counter() - t)
            assert sum(v.status.value == "INVALID" for v in out) == revoked
            t = time.perf_counter()
            for _ in range(a.batch_rounds):
                parsed = [(ProofBundle.from_json(b), d) for b, d in items]
                verify_materials(parsed, client=client, trust=trust)
            per_s_json = a.batch_rounds * a.leaves / (time.perf_counter() - t)
            rows.append(("verify_materials (batch), bundles already parsed", f"{per_s:,.0f} bundles/s",
                         per_s * floor_ms / 1000))
            rows.append(("verify_materials (batch), parsing each bundle's JSON too", f"{per_s_json:,.0f} bundles/s",
                         per_s_json * floor_ms / 1000))
        finally:
            node.stop()

    print(f"standalone verifier on anvil: {a.leaves:,} leaves of one batch ({revoked} revoked), trees {a.tree_hash}")
    print(f"{'what':<62} {'figure':<34} {'vs floor':>9}")
    for what, figure, ratio in rows:
        # ratio: time relative to the floor for latencies; for rates, how many floor-calls' worth
        print(f"{what:<62} {figure:<34} {ratio:>8.2f}x")
    print("(vs floor: a latency divided by the floor's median; a rate times the floor's median, i.e. how many "
          "verifications per floor-call time)")


if __name__ == "__main__":
    main()
