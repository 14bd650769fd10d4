"""Material-bank benchmarks.

    .venv/bin/python -m bench.materials_bench gas              # gas per material by batch size; revocation gas
    .venv/bin/python -m bench.materials_bench anchoring --n 20000
    .venv/bin/python -m bench.materials_bench uploads --n 3000 --procs 3 --clients 4
    .venv/bin/python -m bench.materials_bench uploads-wrk --workers 2 --enterprises 2000 [--profile gm] [--plain-at-rest]
    .venv/bin/python -m bench.materials_bench hashing --size-mb 1024
    .venv/bin/python -m bench.materials_bench upload-memory --size-mb 1024
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.chain_bench import free_port, setup
from tests.processes import run, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]


def bench_gas(tree_hash: str = "keccak256") -> None:
    """`tree_hash` sm3: the gm profile's trees. The contract does the same work for them (it
    hashes nothing of an anchored root), and it cannot check an SM3 path: `revokeLeaf` by proof
    is refused for them, and the service revokes by index (docs/proof-format.md, version 3)."""
    from chain.client import ChainClient
    from chain.errors import TransactionReverted
    from chain.node import AnvilNode
    from chain.proof import MerkleTree

    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode(Path(tmp) / "anvil", port=free_port())
        node.start()
        try:
            client = ChainClient.from_url(node.url)
            ledger, writer = setup(client, Path(tmp))
            print(f"trees hashed with {tree_hash}")
            print("batch size | anchor gas | gas per material | tree build")
            trees = {}
            for n in (1, 16, 256, 1024, 4096):
                leaves = [secrets.token_bytes(32) for _ in range(n)]
                t = time.perf_counter()
                tree = MerkleTree(leaves, tree_hash)
                build = time.perf_counter() - t
                trees[n] = (tree, leaves)
                receipt = ledger.anchor(writer, tree.root, n)
                print(f"{n:>10} | {receipt.gas_used:>10,} | {receipt.gas_used / n:>16,.1f} | {build * 1000:7.1f} ms")
            tree, leaves = trees[1024]
            if tree_hash != "keccak256":
                try:
                    ledger.revoke_leaf(writer, tree.root, leaves[5], tree.proof(5), "bench")
                    raise SystemExit("ERROR: the contract accepted a revocation by an SM3 proof it cannot check")
                except TransactionReverted as exc:
                    print(f"revokeLeaf by an SM3 proof: refused by the contract ({exc.error})")
            else:
                first = ledger.revoke_leaf(writer, tree.root, leaves[5], tree.proof(5), "bench")
                second = ledger.revoke_leaf(writer, tree.root, leaves[6], tree.proof(6), "bench")
                print(f"revokeLeaf, 1024-leaf batch (10-node proof), kept by leaf (contract 1.6.0): {first.gas_used:,} gas")
                print(f"revokeLeaf, same batch, another leaf:                                    {second.gas_used:,} gas")
            tree, leaves = trees[4096]
            indexes = sorted(secrets.SystemRandom().sample(range(4096), 100))
            many = ledger.revoke_leaves(writer, tree.root, indexes, "bench")
            print(f"revokeLeaves, 100 random leaves of a 4096-leaf batch: {many.gas_used:,} gas, "
                  f"{many.gas_used / 100:,.0f} per material")
            tree, leaves = trees[1024]
            many = ledger.revoke_leaves(writer, tree.root, list(range(200, 300)), "bench")
            print(f"revokeLeaves, 100 consecutive leaves:                   {many.gas_used:,} gas, "
                  f"{many.gas_used / 100:,.0f} per material")
        finally:
            node.stop()


def insert_confirmed(runtime, n: int) -> None:
    """Register the benchmark's enterprise and insert n materials straight in the CONFIRMED
    state, as n confirmed uploads leave them."""
    from sqlalchemy import insert, select

    from materials_api.bank.models import Material, MaterialState, TrustLabel
    from materials_api.registry.models import Enterprise
    from materials_api.root import Services

    Services.build(runtime).enterprises.register("91350100M000100Y43", "基准测试公司")
    with runtime.sessions.begin() as s:
        eid = s.scalar(select(Enterprise.id))
        now = datetime.now(timezone.utc)
        s.execute(insert(Material), [dict(
            enterprise_id=eid, type_code="lease_contract", title=f"m{i}", file_name=f"m{i}.pdf",
            content_type="application/pdf", size=100, sha256=secrets.token_hex(32), sm3="00" * 32,
            lineage_id=None, state=MaterialState.CONFIRMED.value, label=TrustLabel.SELF_ATTESTED.value,
            confirmed_at=now, salt=secrets.token_bytes(32)) for i in range(n)])


def time_anchoring(runtime, n: int, batch: int) -> tuple[float, int]:
    """Seconds to anchor n confirmed materials (confirmed → proof stored), and the batches used."""
    from sqlalchemy import select

    from materials_api.bank.models import Material
    from materials_api.root import Services

    insert_confirmed(runtime, n)
    anchorer = Services.build(runtime).anchorer  # wired as the service wires it, batch size as measured
    anchorer.batch_size, anchorer.max_wait = batch, 0
    t = time.perf_counter()
    result = anchorer.run_once(force=True)
    elapsed = time.perf_counter() - t
    assert result.anchored == n, result
    with runtime.sessions() as s:
        assert s.scalar(select(Material.proof).limit(1))
    return elapsed, result.batches


def bench_anchoring(n: int, batch: int) -> None:
    """Materials anchored per second, from confirmed in the database to stored proof, on anvil."""
    from materials_api.platform.config import Settings
    from materials_api.platform.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", node_port=free_port())
        runtime = Runtime.open(settings)
        try:
            elapsed, batches = time_anchoring(runtime, n, batch)
            print(f"anchored {n} materials in {batches} batch(es) of ≤{batch}: {elapsed:.2f} s, "
                  f"{n / elapsed:,.0f} materials/s (confirmed → proof stored, anvil, SQLite)")
        finally:
            runtime.close()


def bench_env(home: Path, extra: dict | None = None) -> dict:
    """This shell's environment without its QIYEMA_ settings, pointed at a benchmark's home. The
    per-address limits are off: one load generator on loopback stands for a whole city's clients."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("QIYEMA_")}, "QIYEMA_HOME": str(home),
            "QIYEMA_RATE_LIMIT_VERIFY_PER_MINUTE": "0", "QIYEMA_RATE_LIMIT_SIGN_IN_PER_MINUTE": "0",
            **(extra or {})}


def _server(home: Path, port: int, extra_env: dict | None = None, workers: int = 1) -> subprocess.Popen:
    """`qiyema init` and `qiyema serve` on a fresh home with its own managed node."""
    env = bench_env(home, {"QIYEMA_NODE_PORT": str(free_port()), **(extra_env or {})})
    run(env, "init")
    return start_server(env, port, "--workers", str(workers), log=home / "serve.log")


def enterprise_key(env: dict, port: int) -> str:
    """Register the benchmark's enterprise through the running server; return its API key."""
    import httpx

    make = lambda *a: run(env, "keys", "create", *a).stdout.strip()  # noqa: E731
    registrar = make("--org", "登记机关", "--role", "registrar")
    httpx.post(f"http://127.0.0.1:{port}/api/v1/enterprises", headers={"Authorization": f"Bearer {registrar}"},
               json={"uscc": "91350100M000100Y43", "name": "示例公司"}, timeout=60).raise_for_status()
    return make("--org", "示例公司", "--role", "enterprise", "--scope", "91350100M000100Y43")


def bench_uploads(n: int, clients: int, size: int, procs: int, workers: int = 1) -> None:
    """Uploads per second of `size`-byte files through the API, from a separate client process."""

    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        server = _server(home, port, workers=workers)
        try:
            enterprise = enterprise_key(bench_env(home), port)
            # Clients in several processes, so the load generator is not held back by one GIL.
            script = f"""
import httpx, os, sys, time, concurrent.futures
url = "http://127.0.0.1:{port}/api/v1/materials"
h = {{"Authorization": "Bearer {enterprise}"}}
count = int(sys.argv[1])
payloads = [b"%PDF-1.7\\n" + os.urandom({size} - 9) for _ in range(count)]
start_at = float(sys.argv[2])
def one(chunk):
    with httpx.Client(timeout=60) as c:
        for p in chunk:
            r = c.post(url, headers=h, files={{"file": ("租赁合同.pdf", p)}}, data={{"folder": "lease_contract"}})
            assert r.status_code == 201, r.text
chunks = [payloads[i::{clients}] for i in range({clients})]
time.sleep(max(0, start_at - time.time()))
with concurrent.futures.ThreadPoolExecutor({clients}) as ex:
    list(ex.map(one, chunks))
print(time.time())
"""
            start_at = time.time() + 3
            per = n // procs
            runs = [subprocess.Popen([sys.executable, "-c", script, str(per), str(start_at)], stdout=subprocess.PIPE,
                                     text=True) for _ in range(procs)]
            ends = [float(r.communicate()[0].strip()) for r in runs]
            assert all(r.returncode == 0 for r in runs)
            elapsed = max(ends) - start_at
            n = per * procs
            print(f"uploaded {n} files of {size // 1000} KB from {procs} client processes x {clients} threads: "
                  f"{elapsed:.2f} s, "
                  f"{n / elapsed:,.0f} uploads/s (embedded store, SQLite, {workers} server worker(s))")
        finally:
            stop_server(server)


_UPLOAD_LUA = r"""
local boundary = "qiyemabench"
local filler = string.rep("x", SIZE)
local counter = 0
local keys = {KEYS}
local cdf = {CDF}  -- Zipf (s = 1.1) over the enterprises: a few upload a lot, most a little
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
request = function()
  counter = counter + 1
  local r, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < r then lo = mid + 1 else hi = mid end
  end
  wrk.headers["Authorization"] = "Bearer " .. keys[lo]
  local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\nlease_contract\r\n" ..
    "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"lease.pdf\"\r\n" ..
    "Content-Type: application/pdf\r\n\r\n%PDF-1.7 " .. tostring(math.random(1, 2147483647)) .. "-" ..
    tostring(counter) .. filler .. "\r\n--" .. boundary .. "--\r\n"
  return wrk.format(nil, "/api/v1/materials", nil, body)
end
local shown = false
response = function(status, headers, body)
  if status >= 300 and not shown then shown = true; io.stderr:write(status .. " " .. body .. "\n") end
end
"""


def enterprise_keys(env: dict, home: Path, n: int) -> list[str]:
    """n enterprises registered by the bulk import, and an API key for each."""
    import random

    from codes.uscc import generate
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role
    from materials_api.platform.config import Settings
    from materials_api.platform.db import make_engine, session_factory

    rng = random.Random(n)
    usccs = list(dict.fromkeys(generate(rng, "310110") for _ in range(n * 2)))[:n]
    (home.parent / "enterprises.csv").write_text("uscc,name\n" + "".join(f"{u},企业{i}\n" for i, u in enumerate(usccs)))
    run(env, "enterprises", "import", str(home.parent / "enterprises.csv"), timeout=1800)
    engine = make_engine(Settings(home=home, database_url=env.get("QIYEMA_DATABASE_URL")).db_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        keys = [create_key(s, u, Role.ENTERPRISE, u)[1] for u in usccs]
    engine.dispose()
    return keys


def fresh_postgres_database(admin_url: str) -> str:
    """A new, empty database on the PostgreSQL server of `admin_url`."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"qiyema_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def bench_uploads_wrk(seconds: int, connections: int, size: int, workers: int, enterprises: int = 1,
                      postgres: str | None = None, profile: str = "intl", at_rest: bool = True) -> None:
    """Uploads per second with wrk as the load generator (C, one process), so the measurement is
    the server's, not a Python client's: each request carries different bytes, from one of
    `enterprises` enterprises drawn with a Zipf distribution."""
    import re
    import shutil

    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        extra = {"QIYEMA_DATABASE_URL": fresh_postgres_database(postgres)} if postgres else {}
        extra.update({"QIYEMA_CRYPTO_PROFILE": profile, "QIYEMA_ENCRYPT_AT_REST": "true" if at_rest else "false"})
        print(f"crypto profile {profile}, encryption at rest {'on' if at_rest else 'off'}", flush=True)
        # The commands run beside the server must name its node (port) too, or they start
        # another one on the same home and the server's own is left behind at the end.
        extra["QIYEMA_NODE_PORT"] = str(free_port())
        server = _server(home, port, extra, workers=workers)
        try:
            if enterprises == 1:
                keys = [enterprise_key(bench_env(home, extra), port)]
            else:
                keys = enterprise_keys(bench_env(home, extra), home, enterprises)
            weights = [1 / (k + 1) ** 1.1 for k in range(len(keys))]
            total, acc, cdf = sum(weights), 0.0, []
            for w in weights:
                acc += w
                cdf.append(acc / total)
            lua = Path(tmp) / "upload.lua"
            lua.write_text(_UPLOAD_LUA.replace("SIZE", str(size - 64))
                           .replace("{KEYS}", "{" + ",".join(f'"{k}"' for k in keys) + "}")
                           .replace("{CDF}", "{" + ",".join(f"{c:.9f}" for c in cdf[:-1]) + ",1.0}"))
            cpu_before = _tree_cpu_seconds(server.pid)
            out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua),
                                  f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True)
            cpu = {pid: t - cpu_before.get(pid, 0.0) for pid, t in _tree_cpu_seconds(server.pid).items()}
            if out.stderr.strip():
                print("first refusal:", out.stderr.strip()[:300])
            out = out.stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
            done = int(re.search(r"(\d+) requests in", out).group(1))
            # Every acknowledged upload is a stored material and an object (nothing counted twice).
            from sqlalchemy import create_engine, text

            engine = create_engine(extra.get("QIYEMA_DATABASE_URL") or f"sqlite:///{home / 'qiyema.db'}")
            with engine.connect() as c:
                stored = c.execute(text("select count(*) from materials where state = 'uploaded'")).scalar()
            engine.dispose()
            objects = sum(1 for p in (home / "objects").rglob("*") if p.is_file() and len(p.name) == 64)
            print(f"wrk, {connections} connections, {size // 1000} KB uploads from {len(keys):,} enterprise(s), "
                  f"{'PostgreSQL' if postgres else 'SQLite'}, {workers} worker(s): {rps:,.0f} uploads/s, "
                  f"median {lat.get('50')}, p99 {lat.get('99')}, non-2xx {int(bad.group(1)) if bad else 0}; "
                  f"{done:,} requests answered, {stored:,} materials and {objects:,} objects stored")
            # CPU per upload does not depend on how the kernel spread wrk's few connections over
            # the workers (which moves the throughput of a short run by ±15%).
            busy = sorted((t for t in cpu.values() if t > 0.05 * seconds), reverse=True)
            print(f"server CPU per upload {sum(cpu.values()) / max(done, 1) * 1000:.2f} ms; busy processes at "
                  + ", ".join(f"{t / seconds:.0%}" for t in busy) + " of a core")
        finally:
            stop_server(server)


def _tree_cpu_seconds(root: int) -> dict[int, float]:
    """User + system CPU seconds of `root` and every process below it (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        found[pid] = times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return found


def bench_hashing(size_mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)  # warm the page cache
        t = time.perf_counter()
        ref = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]
        ref_time = time.perf_counter() - t
        from materials_api.platform.storage import CHUNK, Spool

        t = time.perf_counter()
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        ours_time = time.perf_counter() - t
        assert h.hexdigest() == ref
        print(f"SHA-256 of {size_mb} MB: sha256sum {size_mb / ref_time:,.0f} MB/s, "
              f"ours (hashlib, 1 MiB chunks) {size_mb / ours_time:,.0f} MB/s = {ref_time / ours_time:.0%} of sha256sum")
        t = time.perf_counter()
        spool = Spool(Path(tmp) / "spool", 1 << 40)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                spool.write(chunk)
        spooled = spool.finish()
        spool_time = time.perf_counter() - t
        assert spooled.sha256 == ref
        print(f"upload spool path (SHA-256 + SM3 + write to disk + fsync): {size_mb / spool_time:,.0f} MB/s")


def bench_upload_memory(size_mb: int) -> None:
    """Peak RSS of the server while it receives one upload of `size_mb` MB."""
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        server = _server(home, port, {"QIYEMA_MAX_UPLOAD_BYTES": str((size_mb + 1) << 20)})
        try:
            enterprise = enterprise_key(bench_env(home), port)
            before = _rss(server.pid)
            boundary = "benchboundary"
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n"
                    f"Content-Type: application/pdf\r\n\r\n").encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            block = b"%PDF-1.7" + os.urandom((1 << 20) - 8)

            def body():
                yield head
                for _ in range(size_mb):
                    yield block
                yield tail

            t = time.perf_counter()
            r = httpx.post(f"http://127.0.0.1:{port}/api/v1/materials", content=body(), timeout=600,
                           headers={"Authorization": f"Bearer {enterprise}",
                                    "content-type": f"multipart/form-data; boundary={boundary}"})
            elapsed = time.perf_counter() - t
            assert r.status_code == 201, r.text
            peak = _hwm(server.pid)
            print(f"one {size_mb} MB upload: {elapsed:.1f} s ({size_mb / elapsed:,.0f} MB/s); server RSS before "
                  f"{before / 1024:,.0f} MB, peak {peak / 1024:,.0f} MB")
        finally:
            stop_server(server)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def _hwm(pid: int) -> int:
    return _status_kb(pid, "VmHWM")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["gas", "anchoring", "uploads", "uploads-wrk", "hashing", "upload-memory"])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--clients", type=int, default=4, help="threads per client process")
    ap.add_argument("--procs", type=int, default=3, help="client processes")
    ap.add_argument("--workers", type=int, default=1, help="qiyema serve --workers")
    ap.add_argument("--size-kb", type=int, default=100)
    ap.add_argument("--enterprises", type=int, default=1, help="uploads-wrk: enterprises uploading (Zipf, s = 1.1)")
    ap.add_argument("--postgres", metavar="URL", help="uploads-wrk: a PostgreSQL server to use (a new database)")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--profile", choices=["intl", "gm"], default="intl",
                    help="uploads-wrk: the home's crypto profile (AES-256-GCM or SM4-GCM at rest)")
    ap.add_argument("--plain-at-rest", action="store_true", help="uploads-wrk: encryption at rest off (to compare)")
    ap.add_argument("--tree-hash", choices=["keccak256", "sm3"], default="keccak256",
                    help="gas: the trees' hash (sm3: the gm profile's)")
    a = ap.parse_args()
    if a.what == "gas":
        bench_gas(a.tree_hash)
    elif a.what == "anchoring":
        bench_anchoring(a.n, a.batch)
    elif a.what == "uploads":
        bench_uploads(a.n, a.clients, a.size_kb * 1000, a.procs, a.workers)
    elif a.what == "uploads-wrk":
        bench_uploads_wrk(a.seconds, a.connections, a.size_kb * 1000, a.workers, a.enterprises, a.postgres,
                          a.profile, not a.plain_at_rest)
    elif a.what == "hashing":
        bench_hashing(a.size_mb)
    else:
        bench_upload_memory(a.size_mb)


if __name__ == "__main__":
    main()
