"""Scans spread over a district: anonymous `POST /api/v1/verify/code` of static codes drawn from
every company with a Zipf distribution (s = 1.1), from wrk (a separate C process).

    .venv/bin/python -m bench.scan_bench --companies 2000 --seconds 20 --connections 16 --workers 2

Set-up through the real paths (bench/soak.py's `seed`): companies by the bulk import, a business
licence each and a food permit for a third, issued on chain; their static codes rendered by
`qiyema code render-batch`. The server is `qiyema serve --workers N` (SQLite, embedded store,
managed anvil) with the chain mirror's follower running. Reports requests/s, median and p99, the
scan caches' hit rates (from /metrics), and as a second row the same load on one code.
"""

from __future__ import annotations

import argparse
import json
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
from bench.soak import cache_hits, seed
from tests.processes import run, start_server, stop_server

_LUA = r"""
local codes = {CODES}
local cdf = {CDF}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local r, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  return wrk.format(nil, "/api/v1/verify/code", nil, '{"code":"' .. codes[lo] .. '"}')
end
local shown = false
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; io.stderr:write(status .. " " .. body .. "\n") end
end
"""


def zipf_cdf(n: int, s: float = 1.1) -> list[float]:
    weights = [1.0 / (k + 1) ** s for k in range(n)]
    total, acc, cdf = sum(weights), 0.0, []
    for w in weights:
        acc += w
        cdf.append(acc / total)
    cdf[-1] = 1.0
    return cdf


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--companies", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home, port = tmp / "home", free_port()
        base = f"http://127.0.0.1:{port}"
        env = bench_env(home, {"QIYEMA_NODE_PORT": str(free_port()), "QIYEMA_PUBLIC_URL": base})
        run(env, "init")
        server = start_server(env, port, "--workers", str(a.workers), log=tmp / "serve.log")
        try:
            t = time.monotonic()
            plan = seed(env, home, a.companies, 0, base)
            print(f"set-up: {a.companies:,} companies, {len(plan['permits']):,} food permits "
                  f"({time.monotonic() - t:,.0f} s)", flush=True)
            codes = plan["codes"]
            sample = httpx.post(f"{base}/api/v1/verify/code", json={"code": codes[0]}, timeout=30).json()
            assert sample["status"] == "VALID", sample
            time.sleep(2)  # the follower is at the head
            rows = []
            for label, chosen in ((f"Zipf over {len(codes):,} companies", codes), ("one code (hot key)", codes[:1])):
                lua = tmp / "scan.lua"
                lua.write_text(_LUA.replace("{CODES}", "{" + ",".join(json.dumps(c) for c in chosen) + "}")
                               .replace("{CDF}", "{" + ",".join(f"{x:.9f}" for x in zipf_cdf(len(chosen))) + "}"))
                before = cache_hits(env, base)
                figures = wrk(lua, base, a.seconds, a.connections)
                rows.append((label, figures, delta(before, cache_hits(env, base))))
        finally:
            stop_server(server)
    print(f"\nwrk, {a.connections} connections, {a.seconds} s, `serve --workers {a.workers}`, anonymous static-code scans")
    for label, f, hits in rows:
        print(f"{label:<32} {f['rps']:>8,.0f} verifications/s  median {f['p50']}  p99 {f['p99']}  "
              f"non-200 {f['non2xx']}  cache hits: {hits}")
        if f["first_refusal"]:
            print(f"  first refusal: {f['first_refusal']}")


if __name__ == "__main__":
    main()
