"""Records from the authorities' systems at city scale.

    .venv/bin/python -m bench.records_bench import --companies 200000 --records 1000000
    .venv/bin/python -m bench.records_bench feed --companies 2000 --calls 100 --size 1000

`import`: a fresh home with its managed anvil node; the companies registered by
`qiyema enterprises import`; generated records (a business licence per company, then permits of
the 24 kinds, penalties, abnormal listings and credit grades spread over the companies, realistic
numbers, addresses and dates) written one file per issuing authority and loaded by
`qiyema records import FILE` as that authority (its API key), end to end: validated, written
ahead, issued on chain in Merkle batches, confirmed. Prints records/s per file and overall.

`feed`: `qiyema serve --workers 2` with the records loop running; a separate process sends
`--calls` calls of `--size` changes to `POST /api/v1/records/batch`, each with one revocation of
a record issued earlier, and right after each call returns, scans that company's code until the
revoked record shows INVALID: the distribution of that delay is the figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.chain_bench import free_port
from bench.materials_bench import bench_env
from codes.uscc import generate
from materials_api.records.kinds import KINDS, PERMIT_KINDS
from tests.processes import run, start_server, stop_server

STREETS = ["国定路", "政立路", "黄兴路", "控江路", "长阳路", "大连路", "平凉路", "淞沪路", "翔殷路", "五角场"]
SCOPES = ["餐饮服务", "技术开发、技术咨询", "日用百货销售", "货物进出口", "建设工程施工", "医疗器械经营"]


def companies(n: int) -> list[str]:
    rng, seen, out = random.Random(n), set(), []
    while len(out) < n:
        code = generate(rng, "310110")
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def generate_records(usccs: list[str], total: int, rng: random.Random) -> dict[str, list[dict]]:
    """Records by category: a licence each, then other kinds drawn at random until `total`."""
    by_category: dict[str, list[dict]] = {}

    def add(kind_code: str, uscc: str, n: int, **fields) -> None:
        kind = KINDS[kind_code]
        start = 2015 + rng.randrange(10)
        by_category.setdefault(kind.category, []).append({
            "uscc": uscc, "kind": kind_code, "source_id": f"{kind_code}-{n}", "source_version": 1,
            "valid_from": f"{start}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}", **fields})

    for i, uscc in enumerate(usccs):
        address = f"上海市杨浦区{rng.choice(STREETS)}{rng.randrange(1, 2000)}号"
        add("business_licence", uscc, i, number=uscc, title="营业执照", data={
            "name": f"杨浦示例企业{i}有限公司", "legal_representative": "张" + "伟芳娜敏静丽强磊军洋"[i % 10],
            "legal_representative_id": f"31011019{rng.randrange(60, 99)}0101{rng.randrange(1000, 9999)}",
            "addresses": [address] + ([f"上海市杨浦区{rng.choice(STREETS)}{rng.randrange(1, 2000)}号"]
                                      if rng.random() < 0.2 else []),
            "scope": rng.choice(SCOPES), "registered_capital_wan_yuan": rng.choice([10, 50, 100, 500, 1000])})
    others = [k.code for k in PERMIT_KINDS] + ["administrative_penalty", "abnormal_listing", "credit_grade"]
    for n in range(total - len(usccs)):
        kind, uscc = rng.choice(others), usccs[rng.randrange(len(usccs))]
        if kind == "administrative_penalty":
            add(kind, uscc, n, number=f"沪市监杨处〔2025〕{n}号", data={
                "fact": "超范围经营", "amount_yuan": rng.choice([2000, 5000, 10000, 50000]),
                "party_id": f"31011019{rng.randrange(60, 99)}0101{rng.randrange(1000, 9999)}"})
        elif kind == "abnormal_listing":
            add(kind, uscc, n, data={"reason": "未按规定报送年度报告", "decided_by": "杨浦区市场监管局"})
        elif kind == "credit_grade":
            add(kind, uscc, n, data={"grade": rng.choice("ABCD"), "year": 2025})
        else:
            add(kind, uscc, n, number=f"{kind[:2].upper()}{rng.randrange(10**13, 10**14)}",
                valid_until=f"{2027 + rng.randrange(5)}-12-31",
                data={"items": KINDS[kind].name, "address": f"上海市杨浦区{rng.choice(STREETS)}{rng.randrange(1, 2000)}号"})
    return by_category


def bench_import(n_companies: int, n_records: int, chunk: int, clique: bool = False,
                 node_per_command: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        net = node = None
        if clique:  # a 3-signer geth Clique network, 1 s blocks, through its RPC node, 2 confirmations
            from bench.network_bench import network

            net, rpc = network(Path(tmp), 1, home)
            env = bench_env(home, {"QIYEMA_CHAIN_RPC_URL": rpc, "QIYEMA_CONFIRMATIONS": "2",
                                   "QIYEMA_CHAIN_MAX_HEAD_AGE": "30"})
        else:
            port = free_port()
            env = bench_env(home, {"QIYEMA_NODE_PORT": str(port)})
            if not node_per_command:
                # The home's managed anvil, kept running through the benchmark as a city's node
                # runs (and as the Clique network does); otherwise each command starts it and
                # stops it, loading and dumping its whole state (seconds, growing with the state).
                from materials_api.platform.config import Settings
                from materials_api.platform.runtime import managed_node

                node = managed_node(Settings(home=home, node_port=port))
                node.start()
        try:
            chain = "the 3-signer Clique network" if clique else \
                f"anvil ({'started and stopped by each command' if node_per_command else 'kept running'})"
            _import(env, Path(tmp), n_companies, n_records, chunk, chain)
        finally:
            if net is not None:
                net.down()
            if node is not None:
                node.stop()


def _import(env: dict, tmp: Path, n_companies: int, n_records: int, chunk: int, chain: str) -> None:
    run(env, "init")
    usccs = companies(n_companies)
    csv = Path(tmp) / "companies.csv"
    csv.write_text("uscc,name\n" + "".join(f"{u},杨浦示例企业{i}有限公司\n" for i, u in enumerate(usccs)))
    t = time.monotonic()
    run(env, "enterprises", "import", str(csv), timeout=7200)
    print(f"{n_companies:,} companies registered (enterprises import) in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    files = {}
    for category, lines in generate_records(usccs, n_records, random.Random(n_records)).items():
        path = Path(tmp) / f"{category}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        files[category] = (path, len(lines))
    size = sum(p.stat().st_size for p, _ in files.values())
    print(f"{n_records:,} records generated in {len(files)} files ({size / 1e6:,.0f} MB) in "
          f"{time.monotonic() - t:.1f} s")
    total_time = 0.0
    for category, (path, count) in sorted(files.items(), key=lambda kv: -kv[1][1]):
        key = run(env, "keys", "create", "--org", f"杨浦区{category}发证机关", "--role", "issuer",
                  "--scope", category).stdout.strip()
        t = time.monotonic()
        out = run({**env, "QIYEMA_API_KEY": key}, "records", "import", str(path), "--chunk", str(chunk),
                  timeout=14400)
        took = time.monotonic() - t
        total_time += took
        print(f"  {category:28s} {count:>9,} records in {took:7.1f} s: {count / took:7,.0f} records/s "
              f"({out.stdout.strip().splitlines()[-1]})", flush=True)
    print(f"import of {n_records:,} records for {n_companies:,} companies, end to end (validated, written ahead, "
          f"issued in Merkle batches, confirmed) on {chain}: {n_records / total_time:,.0f} records/s "
          f"({total_time:.1f} s, chunks of {chunk:,} lines)")
    check_witnessed(env, n_records)


def check_witnessed(env: dict, n_records: int) -> None:
    """What the import said it did, checked: every record is in the database and confirmed, and
    the chain holds each of their batches with exactly the records the database puts in it.
    Exits 1, naming what is missing, otherwise."""
    from collections import Counter

    from sqlalchemy import create_engine, text

    from chain.client import ChainClient
    from chain.deploy import load_record
    from chain.ledger import QiyemaLedger
    from materials_api.platform.config import Settings
    from materials_api.platform.runtime import managed_node

    settings = Settings(home=Path(env["QIYEMA_HOME"]), **{name: env[f"QIYEMA_{name.upper()}"] for name in (
        "node_port", "chain_rpc_url", "database_url") if f"QIYEMA_{name.upper()}" in env})
    engine = create_engine(settings.db_url)
    with engine.connect() as c:
        states = dict(c.execute(text("select chain_state, count(*) from records group by chain_state")).all())
        per_root = Counter({bytes(root): n for root, n in c.execute(
            text("select root, count(*) from records where root is not null group by root")).all()})
    engine.dispose()
    node = managed_node(settings)
    started = bool(node and node.start())
    try:
        client = ChainClient.from_url(settings.chain_rpc_url or f"http://127.0.0.1:{settings.node_port}")
        ledger = QiyemaLedger(client, load_record(settings.deployments_dir, client.chain_id))
        on_chain = {root: ledger.anchor_of(root) for root in per_root}
    finally:
        if started:
            node.stop()
    missing = [root.hex() for root, anchor in on_chain.items() if anchor is None]
    wrong = [root.hex() for root, anchor in on_chain.items() if anchor is not None and anchor.leaf_count != per_root[root]]
    stored = sum(states.values())
    print(f"checked: {stored:,} records stored ({states}); {len(per_root):,} batches, "
          f"{len(per_root) - len(missing) - len(wrong):,} on chain with the same count")
    if stored != n_records or set(states) != {"confirmed"} or missing or wrong:
        print(f"ERROR: the chain does not witness what the import reported: {stored:,} of {n_records:,} stored, "
              f"states {states}, batches missing on chain {missing[:5]}, with another count {wrong[:5]}")
        sys.exit(1)


def _permit(uscc: str, n: int, version: int = 1, **extra) -> dict:
    return {"uscc": uscc, "kind": "food_business", "number": f"JY{n:014d}", "valid_until": "2030-12-31",
            "data": {"items": "热食类食品制售", "address": f"上海市杨浦区国定路{n}号"}, "source_id": f"JY-{n}",
            "source_version": version, **extra}


def bench_feed(n_companies: int, calls: int, size: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        env = bench_env(home, {"QIYEMA_NODE_PORT": str(free_port())})
        run(env, "init")
        usccs = companies(n_companies)
        (Path(tmp) / "companies.csv").write_text(
            "uscc,name\n" + "".join(f"{u},杨浦示例企业{i}有限公司\n" for i, u in enumerate(usccs)))
        run(env, "enterprises", "import", str(Path(tmp) / "companies.csv"), timeout=7200)
        key = run(env, "keys", "create", "--org", "杨浦区市场监管局（食品）", "--role", "issuer",
                  "--scope", "permit.food").stdout.strip()
        # A food permit for every company first (the records to revoke later), by the bulk import.
        first = Path(tmp) / "permits.jsonl"
        first.write_text("".join(json.dumps(_permit(u, i), ensure_ascii=False) + "\n" for i, u in enumerate(usccs)))
        run({**env, "QIYEMA_API_KEY": key}, "records", "import", str(first), timeout=7200)
        (Path(tmp) / "usccs.csv").write_text("uscc\n" + "\n".join(usccs) + "\n")
        run(env, "code", "render-batch", str(Path(tmp) / "usccs.csv"), "-o", str(Path(tmp) / "codes"), "--format",
            "txt", timeout=3600)
        plan = {"base": f"http://127.0.0.1:{port}", "key": key, "usccs": usccs, "calls": calls, "size": size,
                "codes": [(Path(tmp) / "codes" / f"{u}.txt").read_text().strip() for u in usccs]}
        (Path(tmp) / "plan.json").write_text(json.dumps(plan))
        server = start_server(env, port, "--workers", str(workers), log=home / "serve.log")
        try:
            out = subprocess.run([sys.executable, "-m", "bench.records_bench", "feed-load", str(Path(tmp) / "plan.json")],
                                 capture_output=True, text=True, timeout=7200)
            print(out.stdout.strip())
            if out.returncode:
                sys.exit(f"the load process failed: {out.stderr[-3000:]}")
        finally:
            stop_server(server)


def feed_load(plan_file: Path) -> None:
    """The authority's system: `calls` calls of `size` changes, each revoking one earlier permit;
    after each call, scans of that company's code until the permit shows revoked."""
    import httpx

    plan = json.loads(plan_file.read_text())
    rng, usccs, codes = random.Random(1), plan["usccs"], plan["codes"]
    h = {"Authorization": f"Bearer {plan['key']}"}
    call_times, visible, applied, n = [], [], 0, len(usccs)
    targets = rng.sample(range(len(usccs)), plan["calls"])  # permits of the first import, each revoked once
    with httpx.Client(base_url=plan["base"], timeout=300) as c:
        for target in targets:
            changes = [_permit(usccs[target], target, 2, status="revoked", reason="食品安全检查不合格")]
            changes += [_permit(usccs[(n + k) % len(usccs)], n + k) for k in range(plan["size"] - 1)]
            n += plan["size"] - 1
            t = time.monotonic()
            r = c.post("/api/v1/records/batch", json={"changes": changes}, headers=h)
            returned = time.monotonic()
            r.raise_for_status()
            applied += r.json()["applied"]
            call_times.append(returned - t)
            while True:  # the very next scans, until the revocation shows
                view = c.post("/api/v1/verify/code", json={"code": codes[target]}).json()["view"]
                permit = next(i for i in view.get("permit", []) if i["number"] == f"JY{target:014d}")
                if permit["status"] == "revoked" and permit["verdict"]["status"] == "INVALID":
                    visible.append(time.monotonic() - returned)
                    break
                if time.monotonic() - returned > 30:
                    visible.append(float("inf"))
                    break
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    total = sum(call_times)
    print(f"feed: {plan['calls']} calls of {plan['size']:,} changes ({applied:,} applied): {applied / total:,.0f} "
          f"changes/s while calls ran; a call took median {statistics.median(call_times) * 1000:.0f} ms, "
          f"p99 {q(call_times, 0.99) * 1000:.0f} ms")
    print(f"revocation visible to a scan after its call returned: median {statistics.median(visible) * 1000:.1f} ms, "
          f"p90 {q(visible, 0.9) * 1000:.1f} ms, p99 {q(visible, 0.99) * 1000:.1f} ms, max {max(visible) * 1000:.1f} ms "
          f"(target ≤ 1 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["import", "feed", "feed-load"])
    ap.add_argument("plan", nargs="?", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--companies", type=int, default=20_000)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=2_000)
    ap.add_argument("--clique", action="store_true", help="import: on a 3-signer geth Clique network, not anvil")
    ap.add_argument("--node-per-command", action="store_true",
                    help="import on anvil: let each command start and stop the home's node (the development default)")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--size", type=int, default=1_000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if a.what == "feed-load":
        feed_load(a.plan)
    elif a.what == "feed":
        bench_feed(a.companies, a.calls, a.size, a.workers)
    else:
        if a.records < a.companies:
            sys.exit("--records must be at least --companies (a licence each)")
        bench_import(a.companies, a.records, a.chunk, a.clique, a.node_per_command)


if __name__ == "__main__":
    main()
