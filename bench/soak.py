"""Soak: mixed traffic for a long time against `qiyema serve --workers 2`, as a district sees it.

    .venv/bin/python -m bench.soak --minutes 30 --companies 2000 --rate 60

Set-up (a fresh home, managed anvil, SQLite, the embedded store; everything through the real
paths): `companies` registered by the bulk import, each with a business licence and a third with
a food permit issued on chain; `keyed` of them get an enterprise API key, one material confirmed
and anchored, and a consent grant to a bank for it.

Load, from separate processes (`--procs` × `--threads`, paced to `--rate` requests/s in all):
scans of static codes drawn from every company with a Zipf distribution (s = 1.1), uploads of
new materials (20–400 KB) and their confirmations by the keyed enterprises (Zipf too), a bank's
consent-checked downloads, and an issuer suspending and restoring permits. Anything but the
expected answer is an error: every code scanned is genuine, so any verdict but VALID is one.

Reports, per minute: requests, throughput, errors, p50 and p99 (all requests, and scans alone);
at the end the RSS of every process (server, its workers, the node) after the first minute of
load and at the end, and the growth between the two. Exit status 1 when there was any error or
a service process grew by more than 10% (anvil keeps the whole chain in memory, so its growth is
the chain's own and is shown, not judged).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from bench.chain_bench import free_port
from bench.materials_bench import _rss, bench_env
from codes.uscc import generate
from tests.processes import run, start_server, stop_server

MIX = {"scan": 0.70, "upload": 0.10, "confirm": 0.06, "consent_read": 0.09, "record_change": 0.05}


def zipf_sampler(n: int, s: float, rng: random.Random):
    """Indices 0..n-1 with P(k) ∝ 1/(k+1)^s (index 0 the most popular)."""
    weights = [1.0 / (k + 1) ** s for k in range(n)]
    total, acc, cdf = sum(weights), 0.0, []
    for w in weights:
        acc += w
        cdf.append(acc / total)
    return lambda: min(bisect.bisect_left(cdf, rng.random()), n - 1)


def pdf(rng: random.Random, size: int) -> bytes:
    head = b"%PDF-1.4\n"
    return head + rng.randbytes(max(0, size - len(head) - 6)) + b"\n%%EOF\n"


# --- set-up ---------------------------------------------------------------------------------
def seed(env: dict, home: Path, companies: int, keyed: int, base: str) -> dict:
    """Register the district and issue its records through the service; returns the load plan."""
    rng = random.Random(companies)
    usccs: list[str] = []
    seen = set()
    while len(usccs) < companies:
        code = generate(rng, "310110")
        if code not in seen:
            seen.add(code)
            usccs.append(code)
    csv = home.parent / "companies.csv"
    csv.write_text("uscc,name\n" + "".join(f"{u},杨浦示例企业{i}有限公司\n" for i, u in enumerate(usccs)))
    run(env, "enterprises", "import", str(csv), timeout=1800)

    make = lambda *a: run(env, "keys", "create", *a).stdout.strip()  # noqa: E731
    keys = {"registrar": make("--org", "杨浦区市场监管局", "--role", "registrar"),
            "licence": make("--org", "杨浦区市场监管局（登记）", "--role", "issuer", "--scope", "licence"),
            "food": make("--org", "杨浦区市场监管局（食品）", "--role", "issuer", "--scope", "permit.food"),
            "bank": make("--org", "示例银行杨浦支行", "--role", "bank")}
    h = lambda k: {"Authorization": f"Bearer {k}"}  # noqa: E731
    permits = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for i, uscc in enumerate(usccs):
            c.post("/api/v1/records", headers=h(keys["licence"]), json={
                "uscc": uscc, "kind": "business_licence", "number": uscc,
                "data": {"addresses": [f"上海市杨浦区示例路{i}号"]}}).raise_for_status()
            if i % 3 == 0:
                r = c.post("/api/v1/records", headers=h(keys["food"]), json={
                    "uscc": uscc, "kind": "food_business", "number": f"JY{i:010d}", "valid_until": "2030-12-31"})
                r.raise_for_status()
                permits.append(r.json()["id"])
        enterprise_keys, granted = [], []
        expires = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
        for uscc, key in zip(usccs[:keyed], _enterprise_keys(home, usccs[:keyed])):
            m = c.post("/api/v1/materials", headers=h(key), files={"file": ("营业执照副本.pdf", pdf(rng, 60_000))})
            m.raise_for_status()
            c.post(f"/api/v1/materials/{m.json()['id']}/confirm", headers=h(key)).raise_for_status()
            c.post("/api/v1/consents", headers=h(key), json={
                "verifier_organisation": "示例银行杨浦支行", "material_ids": [m.json()["id"]],
                "purpose": "开立对公账户", "expires_at": expires}).raise_for_status()
            enterprise_keys.append(key)
            granted.append(m.json()["id"])
    # Static codes (what is printed on the licences), rendered by the service's own command.
    out = home.parent / "codes"
    batch = home.parent / "keyed.csv"
    batch.write_text("uscc\n" + "\n".join(usccs) + "\n")
    run(env, "code", "render-batch", str(batch), "-o", str(out), "--format", "txt", timeout=1800)
    return {"base": base, "codes": [(out / f"{u}.txt").read_text().strip() for u in usccs], "enterprise_keys": enterprise_keys,
            "granted": granted, "permits": permits, "bank": keys["bank"], "food": keys["food"]}


def _enterprise_keys(home: Path, usccs: list[str]) -> list[str]:
    """An enterprise API key for each, made in one transaction (as `qiyema keys create` would,
    without starting a process per key)."""
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role
    from materials_api.platform.config import Settings
    from materials_api.platform.db import make_engine, session_factory

    engine = make_engine(Settings(home=home).db_url)
    try:
        with session_factory(engine).begin() as s:
            return [create_key(s, uscc, Role.ENTERPRISE, uscc)[1] for uscc in usccs]
    finally:
        engine.dispose()


# --- load (a separate process) ------------------------------------------------------------------
def load(plan_file: Path, out_file: Path, seconds: float, rate: float, threads: int, part: int, parts: int) -> None:
    plan = json.loads(plan_file.read_text())
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    out = open(out_file, "w")
    per_thread = rate / threads

    def worker(t: int) -> None:
        rng = random.Random(part * 1000 + t)
        company = zipf_sampler(len(plan["codes"]), 1.1, rng)
        enterprise = zipf_sampler(len(plan["enterprise_keys"]), 1.1, rng)
        permits = plan["permits"][part * threads + t::parts * threads]  # each thread changes its own only
        suspended: set[int] = set()
        uploaded: list[tuple[str, int]] = []
        ops, weights = list(MIX), list(MIX.values())
        lines = []
        with httpx.Client(base_url=plan["base"], timeout=60) as c:
            start, n = time.monotonic(), 0
            while time.monotonic() < deadline:
                n += 1
                due = start + n / per_thread
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                op = rng.choices(ops, weights)[0]
                if op == "confirm" and not uploaded:
                    op = "upload"
                if op == "record_change" and not permits:
                    op = "scan"
                t0 = time.monotonic()
                try:
                    if op == "scan":
                        # Every code scanned is genuine, of an active company: anything but VALID
                        # (an INVALID as much as an ERROR) is a wrong answer, counted as an error.
                        r = c.post("/api/v1/verify/code", json={"code": plan["codes"][company()]})
                        ok = r.status_code == 200 and r.json()["status"] == "VALID"
                    elif op == "upload":
                        i = enterprise()
                        key = plan["enterprise_keys"][i]
                        r = c.post("/api/v1/materials", headers={"Authorization": f"Bearer {key}"},
                                   files={"file": ("材料.pdf", pdf(rng, rng.randint(20_000, 400_000)))})
                        ok = r.status_code == 201
                        if ok:
                            uploaded.append((key, r.json()["id"]))
                    elif op == "confirm":
                        key, mid = uploaded.pop(rng.randrange(len(uploaded)))
                        r = c.post(f"/api/v1/materials/{mid}/confirm", headers={"Authorization": f"Bearer {key}"})
                        ok = r.status_code == 200
                    elif op == "consent_read":
                        mid = plan["granted"][enterprise()]
                        r = c.get(f"/api/v1/materials/{mid}/content", headers={"Authorization": f"Bearer {plan['bank']}"})
                        ok = r.status_code == 200 and len(r.content) > 0
                    else:
                        pid = rng.choice(permits)
                        status = "valid" if pid in suspended else "suspended"
                        r = c.post(f"/api/v1/records/{pid}/status", headers={"Authorization": f"Bearer {plan['food']}"},
                                   json={"status": status, "reason": "整改" if status == "suspended" else None})
                        ok = r.status_code == 200
                        if ok:
                            (suspended.discard if status == "valid" else suspended.add)(pid)
                    detail = "" if ok else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                lines.append(json.dumps({"t": time.time(), "op": op, "ms": (time.monotonic() - t0) * 1000,
                                         "ok": ok, "detail": detail}))
                if len(lines) >= 200:
                    with lock:
                        out.write("\n".join(lines) + "\n")
                        out.flush()
                    lines = []
        with lock:
            if lines:
                out.write("\n".join(lines) + "\n")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    out.close()


# --- processes and their memory -------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def name_of(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in cmd if a)
    if "anvil" in text:
        return "anvil node"
    if "resource_tracker" in text:
        return "multiprocessing resource tracker"
    if "multiprocessing" in text or "spawn_main" in text:
        return "HTTP worker"
    if "serve" in text:
        return "qiyema serve (background work)"
    return text[:40]


def cache_hits(env: dict, base: str) -> dict[str, tuple[float, float]]:
    """(hits, misses) per scan cache, from the server's /metrics (every worker's counts)."""
    return server_counts(env, base)[0]


def server_counts(env: dict, base: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """From the server's /metrics (every worker's counts, read with a scrape key): (hits, misses)
    per scan cache, and code verdicts by "STATUS reason" (what the benchmark's answers said)."""
    from prometheus_client.parser import text_string_to_metric_families

    scraper = run(env, "keys", "create", "--org", "运维", "--role", "scraper").stdout.strip()
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {scraper}"}, timeout=30).text
    counts: dict[str, list[float]] = {}
    verdicts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "qiyema_cache_lookups_total":
                pair = counts.setdefault(sample.labels["cache"], [0.0, 0.0])
                pair[sample.labels["outcome"] != "hit"] += sample.value
            elif sample.name == "qiyema_verdicts_total" and sample.labels.get("subject") == "code":
                key = f"{sample.labels['status']} {sample.labels.get('reason', '')}".strip()
                verdicts[key] = verdicts.get(key, 0.0) + sample.value
    return {k: (v[0], v[1]) for k, v in counts.items()}, verdicts


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--companies", type=int, default=2000)
    ap.add_argument("--keyed", type=int, default=200, help="companies with an enterprise key and a bank grant")
    ap.add_argument("--rate", type=float, default=60, help="requests per second, all load processes together")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=6, help="per load process")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--load", nargs=7, metavar=("PLAN", "OUT", "SECONDS", "RATE", "THREADS", "PART", "PARTS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.load:
        plan, out, seconds, rate, threads, part, parts = a.load
        load(Path(plan), Path(out), float(seconds), float(rate), int(threads), int(part), int(parts))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home, port = tmp / "home", free_port()
        base = f"http://127.0.0.1:{port}"
        env = bench_env(home, {"QIYEMA_NODE_PORT": str(free_port()), "QIYEMA_PUBLIC_URL": base,
                               "QIYEMA_ANCHOR_MAX_WAIT": "2"})
        run(env, "init")
        server = start_server(env, port, "--workers", str(a.workers), log=tmp / "serve.log")
        try:
            t = time.monotonic()
            plan = seed(env, home, a.companies, a.keyed, base)
            print(f"set-up: {a.companies:,} companies, {len(plan['permits']):,} food permits, {a.keyed} keyed "
                  f"enterprises with a granted material ({time.monotonic() - t:,.0f} s)", flush=True)
            (tmp / "plan.json").write_text(json.dumps(plan))
            seconds = a.minutes * 60
            loaders = [subprocess.Popen([sys.executable, "-m", "bench.soak", "--load", str(tmp / "plan.json"),
                                         str(tmp / f"load-{i}.jsonl"), str(seconds), str(a.rate / a.procs),
                                         str(a.threads), str(i), str(a.procs)]) for i in range(a.procs)]
            started = time.time()
            rss: dict[int, list[int]] = {}
            names: dict[int, str] = {}
            while any(p.poll() is None for p in loaders):
                time.sleep(5)
                for pid in descendants(server.pid):
                    if pid in (p.pid for p in loaders):
                        continue
                    try:
                        rss.setdefault(pid, []).append(_rss(pid))
                        names.setdefault(pid, name_of(pid))
                    except OSError:
                        pass
            hits = cache_hits(env, base)
            rows = []
            for i in range(a.procs):
                rows += [json.loads(line) for line in (tmp / f"load-{i}.jsonl").read_text().splitlines() if line]
        finally:
            stop_server(server)
            log_tail = (tmp / "serve.log").read_text(errors="replace")[-2000:]

    print(f"\n{len(rows):,} requests over {a.minutes:g} min, {a.procs} load processes × {a.threads} threads, "
          f"paced to {a.rate:g}/s; mix {MIX}")
    print(f"{'minute':>6} {'requests':>9} {'req/s':>7} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'scan p99':>9}")
    errors = [r for r in rows if not r["ok"]]
    for minute in range(int(a.minutes + 0.999)):
        lo, hi = started + minute * 60, started + (minute + 1) * 60
        window = [r for r in rows if lo <= r["t"] < hi]
        if not window:
            continue
        ms = [r["ms"] for r in window]
        length = min(60.0, max(r["t"] for r in rows) - lo)
        scans = [r["ms"] for r in window if r["op"] == "scan"]
        print(f"{minute + 1:>6} {len(window):>9,} {len(window) / length:>7.1f} {sum(not r['ok'] for r in window):>7} "
              f"{statistics.median(ms):>8.1f} {percentile(ms, 0.99):>8.1f} {percentile(scans, 0.99):>9.1f}")
    by_op = {op: [r["ms"] for r in rows if r["op"] == op] for op in MIX}
    print("by operation: " + ", ".join(f"{op} {len(v):,} (p99 {percentile(v, 0.99):.0f} ms)" for op, v in by_op.items()))
    print(f"errors: {len(errors)}")
    for cache, (hit, miss) in sorted(hits.items()):
        print(f"cache {cache}: {hit:,.0f} hits, {miss:,.0f} misses, hit rate {hit / max(1, hit + miss):.1%}")
    for r in errors[:10]:
        print(f"  {r['op']}: {r['detail']}")
    # Memory: after the first minute of load (imports, pools and caches warm) and at the end.
    samples_per_minute = 12
    grew = False
    marks = [m for m in (1, 5, 10, 15, 20, 25, 30, 45, 60) if m < a.minutes]
    print(f"\n{'process':<32} {'pid':>7} " + " ".join(f"{f'{m} min':>7}" for m in marks)
          + f" {'end':>7} {'growth':>7}  (RSS, MB)")
    for pid, series in sorted(rss.items()):
        if len(series) <= samples_per_minute:
            continue
        first, last = series[samples_per_minute], series[-1]
        growth = (last - first) / first if first else 0.0
        # The development node holds the whole chain in memory: its growth is the chain's
        # (blocks, receipts), shown but not judged; a real node keeps them on disk.
        grew |= growth > 0.10 and names[pid] != "anvil node"
        trend = [series[min(len(series) - 1, m * samples_per_minute)] for m in marks]
        print(f"{names[pid]:<32} {pid:>7} " + " ".join(f"{v / 1024:>7.0f}" for v in trend)
              + f" {last / 1024:>7.0f} {growth:>+7.1%}")
    if errors:
        print("\nserver log (tail):\n" + log_tail)
    sys.exit(1 if errors or grew else 0)


if __name__ == "__main__":
    main()
