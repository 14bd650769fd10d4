"""Chain benchmarks: transaction latency and sustained throughput for registration and
anchoring on py-evm and on anvil, and the CSV import of generated companies on anvil.

    .venv/bin/python -m bench.chain_bench [--latency-n 200] [--tps-n 1000] [--import-n 100000]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import socket
import statistics
import tempfile
import time
from pathlib import Path

from chain.client import ChainClient
from chain.deploy import deploy
from chain.keys import load_or_create
from chain.ledger import QiyemaLedger
from chain.node import AnvilNode
from codes.uscc import chain_key, generate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(client: ChainClient, workdir: Path):
    gov = load_or_create(workdir / "gov.eth")
    writer = load_or_create(workdir / "writer.eth")
    client.fund(gov.address, 10**20)
    client.fund(writer.address, 10**21)
    record, _ = deploy(client, gov, workdir / "deployments",
                       grants={"REGISTRAR_ROLE": [writer.address], "NOTARY_ROLE": [writer.address]})
    return QiyemaLedger(client, record), writer


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_writes(name: str, ledger: QiyemaLedger, writer, make_call, latency_n: int, tps_n: int) -> dict:
    client = ledger.client
    latencies = []
    for i in range(latency_n):
        fn = make_call(i)
        t = time.perf_counter()
        client.transact(writer, fn)
        latencies.append((time.perf_counter() - t) * 1000)
    # Sustained: keep sending, waiting only at the end (nonces are managed locally).
    calls = [make_call(latency_n + i) for i in range(tps_n)]
    t = time.perf_counter()
    hashes = [client.send(writer, fn) for fn in calls]
    for h in hashes:
        client.wait(h)
    elapsed = time.perf_counter() - t
    return {"what": name, "median_ms": statistics.median(latencies), "p99_ms": pct(latencies, 99),
            "tps": tps_n / elapsed}


def chain_figures(label: str, client: ChainClient, workdir: Path, latency_n: int, tps_n: int) -> list[dict]:
    ledger, writer = setup(client, workdir)
    rng = random.Random(1)
    codes = [generate(rng) for _ in range(latency_n + tps_n + 10)]
    codes = list(dict.fromkeys(codes))
    reg = lambda i: ledger.contract.functions.register(chain_key(codes[i]), "0x" + "00" * 20)  # noqa: E731
    anc = lambda i: ledger.contract.functions.anchor(os.urandom(32), 16)  # noqa: E731
    out = [run_writes(f"register on {label}", ledger, writer, reg, latency_n, tps_n),
           run_writes(f"anchor on {label}", ledger, writer, anc, latency_n, tps_n)]
    return out


def import_figure(n: int, workdir: Path, port: int) -> dict:
    from materials_api.platform.config import Settings
    from materials_api.platform.runtime import Runtime
    from materials_api.registry.importer import import_csv
    from materials_api.root import Services

    rng = random.Random(5)
    codes = list(dict.fromkeys(generate(rng) for _ in range(int(n * 1.01) + 10)))[:n]
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "companies.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["uscc", "name"])
        w.writerows((c, f"测试企业{i}有限公司") for i, c in enumerate(codes))
    settings = Settings(home=workdir / "home", node_port=port)
    runtime = Runtime.open(settings)
    try:
        service = Services.build(runtime).enterprises
        t = time.perf_counter()
        report = import_csv(path, service, batch_size=settings.register_batch_size)
        elapsed = time.perf_counter() - t
        assert report.accepted == n, report
        onchain = runtime.chain.ledger.enterprise_count()
        assert onchain == n, onchain
    finally:
        runtime.close()
    return {"what": f"import {n} companies on anvil (batch {settings.register_batch_size})",
            "seconds": elapsed, "per_second": n / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--tps-n", type=int, default=1000)
    ap.add_argument("--import-n", type=int, default=100_000)
    ap.add_argument("--skip-pyevm", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_pyevm:
            rows += chain_figures("py-evm", ChainClient.in_process(poll_interval=0.001), tmp / "pyevm",
                                  args.latency_n, min(args.tps_n, 300))
        node = AnvilNode(tmp / "anvil", port=free_port())
        node.start()
        try:
            client = ChainClient.from_url(node.url, poll_interval=0.002)
            rows += chain_figures("anvil", client, tmp / "anvil-w", args.latency_n, args.tps_n)
        finally:
            node.stop()
        for r in rows:
            print(f"{r['what']:<22} latency median {r['median_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                  f"sustained {r['tps']:8.1f} tx/s")
        if args.import_n:
            r = import_figure(args.import_n, tmp / "import", free_port())
            print(f"{r['what']}: {r['seconds']:.1f} s, {r['per_second']:.0f} companies/s")


if __name__ == "__main__":
    main()
