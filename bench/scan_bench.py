"""Scans spread over a district: anonymous `POST /api/v1/verify/code` of static codes drawn from
every company with a Zipf distribution (s = 1.1), from wrk (a separate C process).

    .venv/bin/python -m bench.scan_bench --companies 2000 --seconds 20 --connections 16 --workers 2 [--profile gm]

Set-up through the paths a city uses (`seed_city`): companies by `qiyema enterprises import`, a
business licence and 1–3 permits each by `qiyema records import` as each issuing authority,
issued on chain in Merkle batches; their static codes rendered by `qiyema code render-batch`. The
server is `qiyema serve --workers N` (SQLite, embedded store, managed anvil, or with `--clique` a
3-signer geth Clique network) with the chain mirror's follower running. Reports requests/s, median and p99, the
scan caches' hit rates (from /metrics), as a second row the same load on one code, and as a third
the verification page itself (`GET /V/…`, the HTML a phone's camera opens: standing, records,
permits timeline), Zipf over every company.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.chain_bench import free_port
from bench.materials_bench import bench_env
from bench.network_bench import network
from bench.records_bench import companies
from bench.soak import server_counts
from materials_api.records.kinds import PERMIT_KINDS
from tests.processes import run, start_server, stop_server

_LUA = r"""
-- The codes (one a line) and their Zipf weights (s = 1.1) are read once per wrk thread.
local codes, cdf = {}, {}
for line in io.lines("{CODES_FILE}") do codes[#codes + 1] = line end
local total = 0
for k = 1, #codes do total = total + 1 / k ^ 1.1; cdf[k] = total end
for k = 1, #codes do cdf[k] = cdf[k] / total end
local function pick()  -- a code drawn by its Zipf weight (binary search of the CDF)
  local r, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  return codes[lo]
end
if "{PAGE}" == "yes" then  -- the verification page a phone's camera opens: GET /V/<payload>, HTML
  request = function()
    return wrk.format("GET", pick():match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]+(/.*)$"))  -- codes are upper case
  end
else
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  request = function()
    return wrk.format(nil, "/api/v1/verify/code", nil, '{"code":"' .. pick() .. '"}')
  end
end
local shown = false
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; io.stderr:write(status .. " " .. body .. "\n") end
end
"""


def wrk(lua: Path, base: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), base],
                         check=True, capture_output=True, text=True)
    text = out.stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), "p50": lat.get("50"),
            "p99": lat.get("99"), "non2xx": int(bad.group(1)) if bad else 0, "first_refusal": out.stderr.strip()[:300]}


def delta(before: dict, after: dict) -> str:
    parts = []
    for cache in sorted(after):
        hit = after[cache][0] - before.get(cache, (0, 0))[0]
        miss = after[cache][1] - before.get(cache, (0, 0))[1]
        parts.append(f"{cache} {hit / max(1, hit + miss):.1%} of {hit + miss:,.0f}")
    return ", ".join(parts)


def seed_city(env: dict, tmp: Path, n: int) -> tuple[list[str], int]:
    """The district through the paths a city uses: companies by `qiyema enterprises import`, a
    business licence and 1–3 permits each (of the 24 kinds) by `qiyema records import` as each
    issuing authority, static codes by `qiyema code render-batch`. Returns (codes, records)."""
    rng = random.Random(n)
    usccs = companies(n)
    began = time.monotonic()
    step = lambda what: print(f"  {time.monotonic() - began:7.0f} s  {what}", flush=True)  # noqa: E731
    (tmp / "companies.csv").write_text("uscc,name\n" + "".join(f"{u},杨浦示例企业{i}有限公司\n"
                                                               for i, u in enumerate(usccs)))
    run(env, "enterprises", "import", str(tmp / "companies.csv"), timeout=7200)
    step(f"{n:,} companies registered")
    by_category: dict[str, list[dict]] = {}
    for i, uscc in enumerate(usccs):
        by_category.setdefault("licence", []).append({
            "uscc": uscc, "kind": "business_licence", "number": uscc, "source_id": f"L-{i}", "source_version": 1,
            "data": {"name": f"杨浦示例企业{i}有限公司", "addresses": [f"上海市杨浦区国定路{i}号"], "scope": "餐饮服务"}})
        for j, kind in enumerate(rng.sample(PERMIT_KINDS, rng.randint(1, 3))):
            by_category.setdefault(kind.category, []).append({
                "uscc": uscc, "kind": kind.code, "number": f"P{i:08d}{j}", "source_id": f"P-{i}-{j}",
                "source_version": 1, "valid_until": "2030-12-31", "data": {"address": f"上海市杨浦区国定路{i}号"}})
    for category, lines in by_category.items():
        path = tmp / f"{category}.jsonl"
        path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        key = run(env, "keys", "create", "--org", f"杨浦区{category}发证机关", "--role", "issuer",
                  "--scope", category).stdout.strip()
        run({**env, "QIYEMA_API_KEY": key}, "records", "import", str(path), timeout=7200)
        step(f"{len(lines):,} {category} records issued")
    (tmp / "usccs.csv").write_text("uscc\n" + "\n".join(usccs) + "\n")
    run(env, "code", "render-batch", str(tmp / "usccs.csv"), "-o", str(tmp / "codes"), "--format", "txt",
        timeout=7200)
    step(f"{n:,} static codes rendered")
    return [(tmp / "codes" / f"{u}.txt").read_text().strip() for u in usccs], sum(map(len, by_category.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--companies", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clique", action="store_true",
                    help="on a 3-signer geth Clique network (1 s blocks, 2 confirmations), not anvil: anvil's blocks "
                         "slow down as its state grows, which makes a 1,000,000-company set-up take hours")
    ap.add_argument("--profile", choices=("intl", "gm"), default="intl",
                    help="the crypto profile the district is set up with (gm: SM2-signed codes, format version 2)")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="set up the district in DIR and keep it; a later run with the same DIR reuses it")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = a.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        kept = tmp / "ports.json"
        reuse = a.keep is not None and kept.exists()
        port, node_port = json.loads(kept.read_text()) if reuse else (free_port(), free_port())
        home, base = tmp / "home", f"http://127.0.0.1:{port}"  # the codes name this origin
        net = None
        if a.clique:
            net, rpc = network(tmp, 1, home)
            chain = {"QIYEMA_CHAIN_RPC_URL": rpc, "QIYEMA_CONFIRMATIONS": "2", "QIYEMA_CHAIN_MAX_HEAD_AGE": "30"}
        else:
            chain = {"QIYEMA_NODE_PORT": str(node_port)}
        env = bench_env(home, {**chain, "QIYEMA_PUBLIC_URL": base})
        if not reuse:
            run(env, "init", "--profile", a.profile)
        server = start_server(env, port, "--workers", str(a.workers), log=tmp / "serve.log")
        try:
            t = time.monotonic()
            if reuse:
                codes = (tmp / "all-codes.txt").read_text().split()
                print(f"reusing the district in {tmp}: {len(codes):,} companies", flush=True)
            else:
                codes, records = seed_city(env, tmp, a.companies)
                (tmp / "all-codes.txt").write_text("\n".join(codes) + "\n")
                kept.write_text(json.dumps([port, node_port]))
                print(f"set-up: {a.companies:,} companies, {records:,} records (a licence and 1–3 permits each) "
                      f"({time.monotonic() - t:,.0f} s)", flush=True)
            sample = httpx.post(f"{base}/api/v1/verify/code", json={"code": codes[0]}, timeout=30).json()
            assert sample["status"] == "VALID", sample
            time.sleep(2)  # the follower is at the head
            rows = []
            for label, chosen, as_page in ((f"Zipf over {len(codes):,} companies", codes, False),
                                           ("one code (hot key)", codes[:1], False),
                                           (f"verification page, Zipf over {len(codes):,}", codes, True)):
                lua, listed = tmp / "scan.lua", tmp / "codes.txt"
                listed.write_text("\n".join(chosen) + "\n")
                lua.write_text(_LUA.replace("{CODES_FILE}", str(listed)).replace("{PAGE}", "yes" if as_page else "no"))
                hits_before, verdicts_before = server_counts(env, base)
                figures = wrk(lua, base, a.seconds, a.connections)
                hits_after, verdicts_after = server_counts(env, base)
                said = {k: v - verdicts_before.get(k, 0.0) for k, v in verdicts_after.items()
                        if v - verdicts_before.get(k, 0.0) > 0}
                rows.append((label, figures, delta(hits_before, hits_after), said))
        finally:
            stop_server(server)
            if net is not None:
                net.down()
    chain_name = "the 3-signer Clique network (1 s blocks)" if a.clique else "anvil"
    print(f"\nwrk, {a.connections} connections, {a.seconds} s, `serve --workers {a.workers}`, "
          f"anonymous static-code scans, {chain_name}, profile {a.profile}")
    failed = False
    for label, f, hits, said in rows:
        # Every code scanned is genuine and its company in good standing: an answer that is not
        # VALID is an error of the service, not throughput (the verdict counters say each answer).
        valid = sum(n for k, n in said.items() if k.startswith("VALID"))
        other = {k: int(n) for k, n in said.items() if not k.startswith("VALID")}
        print(f"{label:<32} {f['rps']:>8,.0f} verifications/s  median {f['p50']}  p99 {f['p99']}  "
              f"non-200 {f['non2xx']}  VALID {valid:,.0f}  cache hits: {hits}")
        if not valid:  # nothing was verified: the load missed the service's verification (a wrong path)
            failed = True
            print("  ERROR: no verdict was given under this load")
        if other:
            failed = True
            print(f"  ERROR: answers to genuine codes that were not VALID: {other}")
        if f["first_refusal"]:
            print(f"  first refusal: {f['first_refusal']}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
