"""A city's deployment on one machine: a geth Clique network (three signers, two RPC nodes), two
`qiyema serve` instances on one PostgreSQL and one MinIO, and the faults they must survive.

The tests run in order on one cluster; each leaves it healthy for the next."""

import os
import re
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from chain.client import ChainClient
from chain.clique_stall import Watchdog, heads
from chain.compile import artifact
from chain.deploy import load_record
from chain.geth import free_port_block
from chain.network import GethNetwork
from codes.uscc import generate
from materials_api.platform.config import Settings
from materials_api.platform.runtime import chain_accounts
from tests.conftest import MinioServer, free_port
from tests.processes import CLI, run, start_server, stop_server

pytestmark = [pytest.mark.network, pytest.mark.timeout(1200)]  # a geth network, MinIO, PostgreSQL

REPO = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4\n% qiyema network test\n"
LEASE_TTL = 4
MAX_HEAD_AGE = 6


class Postgres:
    """A private PostgreSQL (scripts/postgres) this module may restart."""

    def __init__(self):
        self.env = {**os.environ, "QIYEMA_PG_PORT": str(free_port()),
                    "QIYEMA_PG_DIR": f"/tmp/qiyema-pg-{uuid.uuid4().hex[:8]}"}

    def _script(self, verb):
        r = subprocess.run([str(REPO / "scripts" / "postgres"), verb], env=self.env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def start(self):
        self.url = self._script("start")
        return self.url

    def restart(self):
        self._script("restart")

    def stop(self):
        self._script("stop")


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.pg = Postgres()
        self.minio = None
        self.net = GethNetwork(root / "net")
        self.servers: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.envs: dict[str, dict] = {}
        self.watchdog: Watchdog | None = None

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_instance(self, name):
        self.servers[name] = start_server(self.envs[name], self.ports[name], log=self.root / f"{name}.log")

    def stop_instance(self, name):
        stop_server(self.servers[name])

    def db(self):
        return sa.create_engine(self.pg.url, pool_pre_ping=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    built = subprocess.run([str(REPO / "scripts" / "install-geth")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, f"geth could not be built: {built.stderr[-2000:]}"
    os.environ["QIYEMA_GETH"] = built.stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("cl")
    c = Cluster(root)
    try:
        c.pg.start()
        (root / "minio").mkdir()
        c.minio = MinioServer(root / "minio")
        c.minio.start()
        home_a, home_b = root / "a", root / "b"
        accounts = chain_accounts(Settings(home=home_a))
        c.net.create(signers=3, rpc_nodes=2, period=1, base_port=free_port_block(),
                     fund=[a.address for a in accounts.values()])
        spec = c.net.up()
        # As an operator runs `qiyema network watch` beside the nodes: a signer stopped at the
        # wrong moment can leave the other two forked and stalled (Clique; tests/network/test_clique_stall.py).
        c.watchdog = Watchdog(c.net, window=MAX_HEAD_AGE).start()
        rpc = [f"http://127.0.0.1:{n.http_port}" for n in spec.nodes if n.role == "rpc"]
        common = {
            **os.environ, "QIYEMA_DATABASE_URL": c.pg.url, "QIYEMA_STORAGE": "s3",
            "QIYEMA_S3_ENDPOINT": c.minio.endpoint, "QIYEMA_S3_ACCESS_KEY": c.minio.access_key,
            "QIYEMA_S3_SECRET_KEY": c.minio.secret_key, "QIYEMA_S3_BUCKET": "network-test",
            "QIYEMA_CONFIRMATIONS": "2", "QIYEMA_CHAIN_TIMEOUT": "20", "QIYEMA_ANCHOR_MAX_WAIT": "1",
            "QIYEMA_RECONCILE_INTERVAL": "1", "QIYEMA_LEADER_LEASE_TTL": str(LEASE_TTL),
            "QIYEMA_CHAIN_MAX_HEAD_AGE": str(MAX_HEAD_AGE),
        }
        common.pop("QIYEMA_FAILPOINT", None)
        # Two machines: each its own home, the same keys and deployment record, its own RPC node.
        c.envs["a"] = {**common, "QIYEMA_HOME": str(home_a), "QIYEMA_CHAIN_RPC_URL": rpc[0]}
        c.envs["b"] = {**common, "QIYEMA_HOME": str(home_b), "QIYEMA_CHAIN_RPC_URL": rpc[1]}
        c.envs["a"]["QIYEMA_PUBLIC_URL"] = c.envs["b"]["QIYEMA_PUBLIC_URL"] = "https://qiyema.example.cn"
        run(c.envs["a"], "init")
        for d in ("keys", "deployments", "secrets"):  # the keystores and their passphrase (one secret, both machines)
            shutil.copytree(home_a / d, home_b / d)
        c.registrar = run(c.envs["a"], "keys", "create", "--org", "市场监管局", "--role", "registrar").stdout.strip()
        c.bank = run(c.envs["a"], "keys", "create", "--org", "示例银行", "--role", "bank").stdout.strip()
        c.uscc = "91350100M000100Y43"
        c.enterprise = run(c.envs["a"], "keys", "create", "--org", "福建示例科技有限公司", "--role", "enterprise",
                           "--scope", c.uscc).stdout.strip()
        for name in ("a", "b"):
            c.ports[name] = free_port()
            c.start_instance(name)
        c.client = ChainClient.from_url(rpc[0])
        c.ledger = c.client.contract(load_record(home_a / "deployments", spec.chain_id).address, artifact().abi)
        yield c
    finally:
        if c.watchdog:
            c.watchdog.stop()
        for proc in c.servers.values():
            stop_server(proc)
        if c.net.exists:
            c.net.down()
        if c.minio:
            c.minio.stop()
        c.pg.stop()


# --- helpers -------------------------------------------------------------------------------------
def auth(key):
    return {"Authorization": f"Bearer {key}"}


def upload_and_confirm(c, instance, content: bytes, folder="business_licence"):
    r = httpx.post(f"{c.url(instance)}/api/v1/materials", headers=auth(c.enterprise),
                   files={"file": (f"{uuid.uuid4().hex[:6]}.pdf", content, "application/pdf")},
                   data={"folder": folder}, timeout=30)
    assert r.status_code == 201, r.text
    material_id = r.json()["id"]
    r = httpx.post(f"{c.url(instance)}/api/v1/materials/{material_id}/confirm", headers=auth(c.enterprise), timeout=30)
    assert r.status_code == 200, r.text
    return material_id


def material(c, instance, material_id):
    r = httpx.get(f"{c.url(instance)}/api/v1/materials/{material_id}", headers=auth(c.enterprise), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def restart(c, *names):
    """Start every named node even when one fails, so the cluster stays whole for the next test."""
    errors = []
    for name in names:
        try:
            c.net.start_node(name)
        except Exception as exc:  # noqa: BLE001 - reported below, after the others were started
            errors.append(exc)
    if errors:
        raise errors[0]


def wait_anchored(c, ids, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {i: material(c, "b", i)["state"] for i in ids}
        if set(states.values()) == {"anchored"}:
            return
        time.sleep(0.5)
    with c.db().connect() as conn:
        batches = conn.execute(sa.text("select id, state, tx_hash from anchor_batches order by id desc limit 3")).all()
    raise AssertionError(f"not anchored within {timeout}s: {states}; last batches {batches}; signers' heads "
                         f"{heads(c.net)}; stalls healed {c.watchdog.healed if c.watchdog else None}; leader {leader(c)}")


def share_keys(c):
    """Copy every keystore file one machine made to the other (operations keep one key folder)."""
    homes = [Path(c.envs[name]["QIYEMA_HOME"]) / "keys" for name in ("a", "b")]
    for src, dst in (homes, homes[::-1]):
        for f in src.glob("*.json"):
            if not (dst / f.name).exists():
                shutil.copy2(f, dst / f.name)


def verify(c, instance, material_id, content):
    bundle = httpx.get(f"{c.url(instance)}/api/v1/materials/{material_id}/proof", headers=auth(c.enterprise),
                       timeout=30).json()
    import hashlib

    r = httpx.post(f"{c.url(instance)}/api/v1/verify/material",
                   json={"sha256": hashlib.sha256(content).hexdigest(), "bundle": bundle}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def head(c):
    return c.client.block_number()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout}s")


def anchored_events(c):
    """`BatchAnchored` of the material bank's batches (record batches anchor through the same
    event, under their issuer: left out)."""
    with c.db().connect() as conn:
        records = {bytes(r[0]) for r in conn.execute(sa.text("select distinct root from records where root is not null"))}
    return [e for e in _anchored_events(c) if bytes(e["args"]["root"]) not in records]


def _anchored_events(c):
    return list(c.client.events(c.ledger.events.BatchAnchored, 0))


def leader(c):
    with c.db().connect() as conn:
        return conn.execute(sa.text("select holder from leases where name = 'background' and expires_at > :t"),
                            {"t": time.time()}).scalar()


# --- the tests, in order ---------------------------------------------------------------------------
def test_two_instances_share_one_database_one_chain_and_one_leader(cluster):
    c = cluster
    r = httpx.post(f"{c.url('a')}/api/v1/enterprises", headers=auth(c.registrar),
                   json={"uscc": c.uscc, "name": "福建示例科技有限公司"}, timeout=60)
    assert r.status_code == 201, r.text
    # Registrations through both instances at once, from one registrar account, through two
    # different RPC nodes: the shared nonce store keeps every transaction distinct.
    import concurrent.futures

    rng = random.Random(6)
    codes = list(dict.fromkeys(generate(rng) for _ in range(12)))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(
            lambda ic: httpx.post(f"{c.url('ab'[ic[0] % 2])}/api/v1/enterprises", headers=auth(c.registrar),
                                  json={"uscc": ic[1], "name": f"企业{ic[0]}"}, timeout=90),
            enumerate(codes)))
    assert [r.status_code for r in replies] == [201] * len(codes), [r.text for r in replies if r.status_code != 201]
    assert all(r.json()["chain"]["state"] == "confirmed" for r in replies)
    assert c.client.call(c.ledger.functions.enterpriseCount()) == len(codes) + 1
    holder = leader(c)
    pids = {str(p.pid) for p in c.servers.values()}
    assert holder and holder.split(":")[1] in pids  # exactly one instance holds the background lease
    contents = [PDF + f"material {i}".encode() for i in range(3)]
    ids = [upload_and_confirm(c, "ab"[i % 2], body) for i, body in enumerate(contents)]
    wait_anchored(c, ids)
    for material_id, body in zip(ids, contents):
        assert verify(c, "a", material_id, body)["status"] == "VALID"
        assert verify(c, "b", material_id, body)["status"] == "VALID"


def test_an_issuer_and_a_rotated_notary_are_funded_by_the_governor_where_no_node_holds_a_faucet(cluster):
    """The RPC nodes hold no keys: an issuing organisation's new account (and a notary key made
    by rotation) is paid for from the governor, funded in the genesis block."""
    c = cluster
    issuer = run(c.envs["a"], "keys", "create", "--org", "市场监管局食品科", "--role", "issuer",
                 "--scope", "permit.food").stdout.strip()
    r = httpx.post(f"{c.url('a')}/api/v1/records", headers=auth(issuer), timeout=90,
                   json={"uscc": c.uscc, "kind": "food_business", "number": "JY1", "data": {"items": "热食"}})
    assert r.status_code in (201, 202), r.text
    record_id = r.json()["id"]
    wait_until(lambda: httpx.get(f"{c.url('b')}/api/v1/records/{record_id}/proof", headers=auth(issuer),
                                 timeout=30).status_code == 200, 90, "the record's proof (issued on chain)")
    rotated = run(c.envs["a"], "keys", "rotate", "--role", "notary", timeout=180)
    assert "now holds NOTARY_ROLE" in rotated.stdout, rotated.stderr
    # Keystores: the new generation's file and the issuer organisation's account (made by the
    # instance that first signed for it) go to every machine, as the keys did at set-up.
    share_keys(c)
    assert (Path(c.envs["b"]["QIYEMA_HOME"]) / "keys" / "notary.2.json").exists()
    content = PDF + b"after the notary's rotation"
    material_id = upload_and_confirm(c, "b", content)
    wait_anchored(c, [material_id], timeout=90)
    assert verify(c, "a", material_id, content)["status"] == "VALID"


def test_one_signer_down_anchoring_continues(cluster):
    c = cluster
    c.net.stop_node("signer-1")
    try:
        before = head(c)
        content = PDF + b"one signer down"
        material_id = upload_and_confirm(c, "a", content)
        wait_anchored(c, [material_id], timeout=60)
        assert head(c) > before + 2
        assert verify(c, "b", material_id, content)["status"] == "VALID"
    finally:
        restart(c, "signer-1")


def test_two_signers_down_halts_the_chain_uploads_queue_and_are_anchored_on_return(cluster):
    c = cluster
    anchored_before = PDF + b"anchored before the halt"
    earlier = upload_and_confirm(c, "a", anchored_before)
    wait_anchored(c, [earlier])
    c.net.stop_node("signer-1")
    c.net.stop_node("signer-2")
    try:
        halted_at = head(c)
        time.sleep(MAX_HEAD_AGE + 3)
        assert head(c) <= halted_at + 1  # the last signer may seal one more block, then halts
        queued = [(upload_and_confirm(c, "ab"[i], PDF + f"queued {i}".encode()), PDF + f"queued {i}".encode())
                  for i in range(2)]
        time.sleep(3)
        assert {material(c, "a", i)["state"] for i, _ in queued} == {"confirmed"}
        verdict = verify(c, "b", earlier, anchored_before)
        checks = {ch["name"]: ch for ch in verdict["checks"]}
        assert verdict["status"] == "ERROR"
        assert checks["liveness"]["status"] == "ERROR" and checks["liveness"]["reason"] == "chain_halted"
        assert checks["integrity"]["status"] == "VALID" and checks["anchor"]["status"] == "VALID"
    finally:
        restart(c, "signer-1", "signer-2")
    wait_anchored(c, [i for i, _ in queued], timeout=120)
    for material_id, body in queued:
        assert verify(c, "a", material_id, body)["status"] == "VALID"


def test_instance_killed_mid_batch_the_other_takes_over_nothing_lost_or_anchored_twice(cluster):
    c = cluster
    holder = leader(c)
    victim = next(n for n, p in c.servers.items() if str(p.pid) == holder.split(":")[1])
    survivor = "b" if victim == "a" else "a"
    bodies = [PDF + f"mid-batch {i}".encode() for i in range(4)]
    ids = [upload_and_confirm(c, survivor, body) for body in bodies]
    engine = c.db()
    open_batch = None
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline and open_batch is None:
            open_batch = conn.execute(sa.text(
                "select id, state from anchor_batches where state != 'confirmed' order by id desc")).first()
            if open_batch is None:
                time.sleep(0.02)
                conn.rollback()
    assert open_batch is not None, "the leader never opened a batch"
    c.servers[victim].kill()  # SIGKILL: no lease release, no clean-up
    c.servers[victim].wait()
    wait_until(lambda: (leader(c) or "").split(":")[1:2] == [str(c.servers[survivor].pid)], LEASE_TTL * 4,
               "the surviving instance did not take the lease")
    wait_anchored(c, ids, timeout=60)
    with engine.connect() as conn:
        roots = [bytes(r[0]) for r in conn.execute(sa.text("select root from anchor_batches where state = 'confirmed'"))]
        unconfirmed = conn.execute(sa.text("select count(*) from anchor_batches where state != 'confirmed'")).scalar()
        per_material = conn.execute(sa.text(
            "select count(*) from materials where id = any(:ids) and batch_id is not null"), {"ids": ids}).scalar()
    events = [bytes(e["args"]["root"]) for e in anchored_events(c)]
    assert unconfirmed == 0
    assert sorted(events) == sorted(roots)  # every batch on chain exactly once, no stray roots
    assert len(set(events)) == len(events)
    assert per_material == len(ids)
    for material_id, body in zip(ids, bodies):
        assert verify(c, survivor, material_id, body)["status"] == "VALID"
    c.start_instance(victim)


def test_minio_down_uploads_fail_with_503_and_nothing_is_recorded(cluster):
    c = cluster
    with c.db().connect() as conn:
        before = conn.execute(sa.text("select count(*) from materials")).scalar()
    c.minio.stop()
    try:
        for instance in ("a", "b"):
            r = httpx.post(f"{c.url(instance)}/api/v1/materials", headers=auth(c.enterprise),
                           files={"file": ("x.pdf", PDF + b"minio down " + instance.encode(), "application/pdf")},
                           timeout=60)
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
        with c.db().connect() as conn:
            assert conn.execute(sa.text("select count(*) from materials")).scalar() == before
    finally:
        c.minio.start()
    content = PDF + b"after minio returned"
    wait_anchored(c, [upload_and_confirm(c, "b", content)])


def test_postgres_restart_the_instances_reconnect(cluster):
    c = cluster
    c.pg.restart()
    for instance in ("a", "b"):
        r = httpx.get(f"{c.url(instance)}/api/v1/enterprises/{c.uscc}", headers=auth(c.registrar), timeout=30)
        assert r.status_code == 200, r.text
    content = PDF + b"after postgres restarted"
    material_id = upload_and_confirm(c, "a", content)
    wait_anchored(c, [material_id], timeout=60)
    assert verify(c, "b", material_id, content)["status"] == "VALID"
    wait_until(lambda: leader(c) is not None, LEASE_TTL * 3, "no instance took the lease back")


def test_signers_are_added_and_removed_by_cliques_vote_and_the_chain_goes_on(cluster):
    c = cluster
    before = c.net.signers()
    added = c.net.add_signer()
    assert added.address in c.net.signers() and len(c.net.signers()) == len(before) + 1
    c.net.remove_signer("signer-1")
    after = c.net.signers()
    assert c.net.spec().node("signer-1").address not in after and len(after) == len(before)
    assert c.net.pid("signer-1") is None
    content = PDF + b"after the signer set changed"
    material_id = upload_and_confirm(c, "a", content)
    wait_anchored(c, [material_id], timeout=60)
    assert verify(c, "b", material_id, content)["status"] == "VALID"


def test_the_network_command_line(tmp_path):
    """`qiyema network up/status/down` as an operator runs them, on a one-signer network."""
    env = {**os.environ, "QIYEMA_HOME": str(tmp_path / "home")}
    base = str(free_port_block())
    try:
        up = run(env, "network", "up", "--signers", "1", "--base-port", base, timeout=300)
        assert "created a 1-signer Clique network" in up.stdout and "QIYEMA_CHAIN_RPC_URL=" in up.stdout
        rpc = up.stdout.split("QIYEMA_CHAIN_RPC_URL=")[1].split()[0]
        status = run(env, "network", "status").stdout
        assert "signer-1" in status and "rpc-1" in status and "signers (1)" in status
        # The service's own accounts were funded in the genesis block.
        client = ChainClient.from_url(rpc)
        governor = chain_accounts(Settings(home=tmp_path / "home"))["governor"]
        assert client.balance(governor.address) > 0
        bad = run(env, "network", "remove-signer", "rpc-1", check=False)
        assert bad.returncode == 3 and "not a current signer" in bad.stderr
        added = run(env, "network", "add-signer", timeout=300).stdout
        assert re.search(r"signer-2 \(0x[0-9a-fA-F]{40}\) is a signer", added), added
        assert "signers (2)" in run(env, "network", "status").stdout
        healthy = run(env, "network", "heal", "--window", "2").stdout
        assert "no stall" in healthy, healthy
        watch = subprocess.Popen(CLI + ["network", "watch", "--window", "2"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            assert "watching" in watch.stdout.readline()
            time.sleep(3)  # one look at the heads: sealing goes on, nothing to heal
        finally:
            stop_server(watch)
        out, err = watch.communicate()
        assert watch.returncode == 0 and "stalls healed: 0" in out, (out, err)
    finally:
        down = run(env, "network", "down")
    assert "signer-1" in down.stdout
    assert "nothing was running" in run(env, "network", "down").stdout
