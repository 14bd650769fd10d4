"""Verification under load: `POST /api/v1/verify/code` from a separate process (wrk), with
10,000 and with 1,000,000 registered companies.

    .venv/bin/python -m bench.verify_bench --companies 10000 1000000 --seconds 20 --connections 16 --workers 2

The server is `qiyema serve` (one process, SQLite, managed anvil). The scanned company has a
licence and two permits, each verified per scan; the caller is anonymous (the public view).
Requires `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.chain_bench import free_port
from codes.uscc import chain_key, generate


def fill(db: Path, n: int) -> None:
    """Insert n registered companies straight into the register (as an import would leave them)."""
    rng = random.Random(n)
    now = "2026-01-01 00:00:00.000000"
    with sqlite3.connect(db) as c:
        batch, seen = [], set()
        while len(seen) < n:
            code = generate(rng)
            if code in seen or code == "91350100M000100Y43":
                continue
            seen.add(code)
            batch.append((code, f"企业{len(seen)}", chain_key(code), "active", "active", "confirmed", now, now))  # noqa: E501
            if len(batch) == 50_000:
                c.executemany("INSERT INTO enterprises (uscc, name, uscc_key, status, chain_status, chain_state,"
                              " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)", batch)
                batch = []
        if batch:
            c.executemany("INSERT INTO enterprises (uscc, name, uscc_key, status, chain_status, chain_state,"
                          " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)", batch)


def run_one(companies: int, seconds: int, connections: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_") or k == "QIYEMA_NODE_STATE_INTERVAL"},
               "QIYEMA_HOME": str(home), "QIYEMA_RATE_LIMIT_VERIFY_PER_MINUTE": "0",
               "QIYEMA_NODE_PORT": str(free_port()), "QIYEMA_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        cli = [sys.executable, "-m", "materials_api.cli"]
        subprocess.run(cli + ["init"], env=env, check=True, capture_output=True)
        keys = {}
        for name, args in (("registrar", ["--role", "registrar"]), ("licence", ["--role", "issuer", "--scope", "licence"]),
                           ("food", ["--role", "issuer", "--scope", "permit.food"])):
            keys[name] = {"Authorization": "Bearer " + subprocess.run(
                cli + ["keys", "create", "--org", name, *args], env=env, check=True, capture_output=True,
                text=True).stdout.strip()}
        server = subprocess.Popen(cli + ["serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            # The register is filled after start-up, as confirmed rows: verification reads the
            # register (database), never the enterprise registry on chain, and registering a
            # million companies on anvil takes it past 15 GB of memory (see docs/benchmarks.md).
            t = time.perf_counter()
            fill(home / "qiyema.db", companies)
            fill_s = time.perf_counter() - t
            c = httpx.Client(base_url=base, timeout=60)
            uscc = "91350100M000100Y43"
            c.post("/api/v1/enterprises", headers=keys["registrar"], json={"uscc": uscc, "name": "基准测试公司"}).raise_for_status()
            c.post("/api/v1/records", headers=keys["licence"], json={"uscc": uscc, "kind": "business_licence", "data": {}}).raise_for_status()
            permit = c.post("/api/v1/records", headers=keys["food"], json={"uscc": uscc, "kind": "food_business",
                            "valid_until": "2030-12-31", "data": {}}).json()
            c.post("/api/v1/records", headers=keys["food"], json={"uscc": uscc, "kind": "food_production", "data": {}}).raise_for_status()
            from codes.scan import scan

            code = scan(c.get(f"/api/v1/enterprises/{uscc}/code.png", headers=keys["registrar"]).content)[0]
            first = c.post("/api/v1/verify/code", json={"code": code}).json()
            assert first["status"] == "VALID" and len(first["view"]["permit"]) == 2, first
            lua = Path(tmp) / "post.lua"
            lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                           f"wrk.body = {json.dumps(json.dumps({'code': code}))}\n")
            out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua),
                                  base + "/api/v1/verify/code"], check=True, capture_output=True, text=True).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            # Correctness under caching: a revocation is visible to the very next verification.
            c.post(f"/api/v1/records/{permit['id']}/status", headers=keys["food"], json={"status": "revoked"}).raise_for_status()
            after = c.post("/api/v1/verify/code", json={"code": code}).json()
            revoked_seen = next(p for p in after["view"]["permit"] if p["id"] == permit["id"])["verdict"]["status"] == "INVALID"
            return {"companies": companies, "fill_s": fill_s, "rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
                    "non2xx": int(errors.group(1)) if errors else 0, "revocation_visible_next_scan": revoked_seen}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--companies", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="qiyema serve --workers")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    for n in a.companies:
        r = run_one(n, a.seconds, a.connections, a.workers)
        print(f"workers {a.workers}, {r['companies']:>9,} companies in the register (filled in {r['fill_s']:.0f} s): "
              f"{r['rps']:,.0f} verifications/s, "
              f"latency median {r['p50']}, p99 {r['p99']}, non-2xx {r['non2xx']}, "
              f"revocation visible to the next scan: {r['revocation_visible_next_scan']}")


if __name__ == "__main__":
    main()
