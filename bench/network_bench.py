"""Benchmarks on a 3-signer geth Clique network (scripts/install-geth builds geth once).

    .venv/bin/python -m bench.network_bench anchoring --periods 1 5 --n 20480
    .venv/bin/python -m bench.network_bench time-to-proof --periods 1 5 --samples 10
    .venv/bin/python -m bench.network_bench verify --seconds 20 --connections 16 [--workers 2]

anchoring: confirmed materials → proofs stored, batches of 1,024 leaves, 2 confirmations.
time-to-proof: through `qiyema serve` (defaults: a batch waits at most 2 s), from the confirm
request to the material's state `anchored`, one material at a time.
verify: `POST /api/v1/verify/material` (three contract reads and the head block per request,
through the network's RPC node) with wrk against one instance, then against two instances on one
PostgreSQL, one wrk per instance (an even load balancer). Requires `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.chain_bench import free_port
from bench.materials_bench import bench_env, enterprise_key, time_anchoring
from chain.geth import free_port_block
from chain.network import GethNetwork
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime, chain_accounts
from tests.processes import run, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]


def network(tmp: Path, period: int, home: Path) -> tuple[GethNetwork, str]:
    """A 3-signer Clique network in `tmp` funding `home`'s accounts (created on first use,
    started again when `tmp` holds one already) and its RPC URL."""
    net = GethNetwork(tmp / "net")
    if not net.exists:
        fund = [a.address for a in chain_accounts(Settings(home=home)).values()]
        net.create(signers=3, rpc_nodes=1, period=period, base_port=free_port_block(), fund=fund)
    return net, net.rpc_url(net.up())


def bench_anchoring(periods: list[int], n: int) -> None:
    for period in periods:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            net, rpc = network(Path(tmp), period, home)
            try:
                runtime = Runtime.open(Settings(home=home, chain_rpc_url=rpc, confirmations=2))
                try:
                    elapsed, batches = time_anchoring(runtime, n, 1024)
                finally:
                    runtime.close()
                print(f"period {period} s: anchored {n} materials in {batches} batches of ≤1024 "
                      f"(2 confirmations): {elapsed:.1f} s, {n / elapsed:,.0f} materials/s, "
                      f"{elapsed / batches:.2f} s per batch")
            finally:
                net.down()


def _upload_confirm(c: httpx.Client, key: str, body: bytes) -> tuple[int, float]:
    m = c.post("/api/v1/materials", headers={"Authorization": key},
               files={"file": ("营业执照.pdf", body, "application/pdf")}).json()
    t = time.perf_counter()
    c.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": key}).raise_for_status()
    return m["id"], t


def bench_time_to_proof(periods: list[int], samples: int) -> None:
    for period in periods:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            net, rpc = network(Path(tmp), period, home)
            port = free_port()
            env = bench_env(home, {"QIYEMA_CHAIN_RPC_URL": rpc, "QIYEMA_CONFIRMATIONS": "2"})
            try:
                run(env, "init")
                server = start_server(env, port, log=home / "serve.log")
                try:
                    key = "Bearer " + enterprise_key(env, port)
                    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
                    times = []
                    for i in range(samples):
                        material_id, t = _upload_confirm(c, key, b"%PDF-1.4\n" + os.urandom(64))
                        while c.get(f"/api/v1/materials/{material_id}",
                                    headers={"Authorization": key}).json()["state"] != "anchored":
                            time.sleep(0.05)
                        times.append(time.perf_counter() - t)
                    times.sort()
                    print(f"period {period} s: time to proof over {samples} materials: median "
                          f"{statistics.median(times):.1f} s, min {times[0]:.1f} s, max {times[-1]:.1f} s")
                finally:
                    stop_server(server)
            finally:
                net.down()


def _wrk(url: str, body: str, seconds: int, connections: int, tmp: Path, name: str) -> subprocess.Popen:
    lua = tmp / f"{name}.lua"
    lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                   f"wrk.body = {json.dumps(body)}\n")
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                            stdout=subprocess.PIPE, text=True)


def _parse(out: str) -> tuple[float, dict, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat, int(errors.group(1)) if errors else 0


def bench_verify(seconds: int, connections: int, workers: int = 1) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pg_env = {**os.environ, "QIYEMA_PG_PORT": str(free_port()), "QIYEMA_PG_DIR": f"/tmp/qiyema-pg-bench-{os.getpid()}"}
        pg_url = subprocess.run([str(ROOT / "scripts" / "postgres"), "start"], env=pg_env, check=True,
                                capture_output=True, text=True).stdout.strip()
        home_a, home_b = tmp / "a", tmp / "b"
        net, rpc = network(tmp, 1, home_a)
        servers = []
        try:
            base = {k: v for k, v in bench_env(home_a, {
                "QIYEMA_CHAIN_RPC_URL": rpc, "QIYEMA_CONFIRMATIONS": "2", "QIYEMA_DATABASE_URL": pg_url,
                "QIYEMA_CHAIN_MAX_HEAD_AGE": "30"}).items() if k != "QIYEMA_HOME"}
            env_a = {**base, "QIYEMA_HOME": str(home_a)}
            run(env_a, "init")
            import shutil

            for d in ("keys", "deployments", "secrets"):  # the keystores and their passphrase (one secret, both machines)
                shutil.copytree(home_a / d, home_b / d)
            ports = [free_port(), free_port()]
            servers.append(start_server(env_a, ports[0], "--workers", str(workers), log=home_a / "serve.log"))
            key = "Bearer " + enterprise_key(env_a, ports[0])
            c = httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=60)
            content = b"%PDF-1.4\n" + os.urandom(256)
            material_id, _ = _upload_confirm(c, key, content)
            while c.get(f"/api/v1/materials/{material_id}", headers={"Authorization": key}).json()["state"] != "anchored":
                time.sleep(0.1)
            bundle = c.get(f"/api/v1/materials/{material_id}/proof", headers={"Authorization": key}).json()
            body = json.dumps({"sha256": hashlib.sha256(content).hexdigest(), "bundle": bundle})
            first = c.post("/api/v1/verify/material", content=body, headers={"Content-Type": "application/json"}).json()
            assert first["status"] == "VALID", first
            rps, lat, errors = _parse(_wrk(f"http://127.0.0.1:{ports[0]}/api/v1/verify/material", body, seconds,
                                           connections, tmp, "one").communicate()[0])
            print(f"one instance (serve --workers {workers}):  {rps:,.0f} verifications/s, p50 {lat.get('50')}, p99 {lat.get('99')}, "
                  f"non-2xx {errors}")
            servers.append(start_server({**base, "QIYEMA_HOME": str(home_b)}, ports[1], "--workers", str(workers),
                                        log=home_b / "serve.log"))
            runs = [_wrk(f"http://127.0.0.1:{p}/api/v1/verify/material", body, seconds, connections // 2, tmp, f"i{p}")
                    for p in ports]
            results = [_parse(r.communicate()[0]) for r in runs]
            print(f"two instances: {sum(r[0] for r in results):,.0f} verifications/s "
                  f"({' + '.join(f'{r[0]:,.0f}' for r in results)}), p50 {[r[1].get('50') for r in results]}, "
                  f"p99 {[r[1].get('99') for r in results]}, non-2xx {sum(r[2] for r in results)}")
        finally:
            for s in servers:
                stop_server(s)
            net.down()
            subprocess.run([str(ROOT / "scripts" / "postgres"), "stop"], env=pg_env, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["anchoring", "time-to-proof", "verify"])
    ap.add_argument("--periods", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--n", type=int, default=20480)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="verify: `serve --workers N` for each instance")
    a = ap.parse_args()
    if a.what == "anchoring":
        bench_anchoring(a.periods, a.n)
    elif a.what == "time-to-proof":
        bench_time_to_proof(a.periods, a.samples)
    else:
        bench_verify(a.seconds, a.connections, a.workers)


if __name__ == "__main__":
    main()
