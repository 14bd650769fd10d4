"""End to end on a real anvil node, through the command line and HTTP, as an operator would."""

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import httpx
import pytest

from chain.client import ChainClient
from chain.deploy import load_record
from chain.ledger import EnterpriseStatus, QiyemaLedger
from chain.node import AnvilNode
from codes import token
from codes.uscc import chain_key, generate
from tests.conftest import CODE_VERSION, free_port
from tests.processes import CLI, run, start_server, stop_server

pytestmark = pytest.mark.anvil



@pytest.fixture
def home(tmp_path):
    env = {**os.environ, "QIYEMA_HOME": str(tmp_path / "home"), "QIYEMA_NODE_PORT": str(free_port())}
    env.pop("QIYEMA_DATABASE_URL", None)
    env.pop("QIYEMA_CHAIN_RPC_URL", None)
    yield env
    AnvilNode(tmp_path / "home" / "node", port=int(env["QIYEMA_NODE_PORT"])).stop()


def test_init_is_idempotent(home):
    run(home, "init")
    key = open(os.path.join(home["QIYEMA_HOME"], "governor.key")).read()
    first = json.load(open(os.path.join(home["QIYEMA_HOME"], "deployments", "31337.json")))
    out = run(home, "init").stdout
    assert "already" in out
    assert open(os.path.join(home["QIYEMA_HOME"], "governor.key")).read() == key
    assert json.load(open(os.path.join(home["QIYEMA_HOME"], "deployments", "31337.json"))) == first
    status = run(home, "chain", "status")
    assert "matches the local build" in status.stdout and "trust list:     1 deployment(s)" in status.stdout
    assert not AnvilNode(os.path.join(home["QIYEMA_HOME"], "node")).pid()  # init and status stop their node
    # No plaintext private key on disk: every key is an encrypted keystore; `keys list` shows them.
    keys_dir = os.path.join(home["QIYEMA_HOME"], "keys")
    assert sorted(os.listdir(keys_dir)) == ["governor.json", "notary.json", "registrar.json"]
    for name in os.listdir(keys_dir):
        assert json.load(open(os.path.join(keys_dir, name)))["crypto"]["kdf"] == "scrypt"
    listed = run(home, "keys", "list").stdout
    assert "custody: keystore" in listed and listed.count(" active") == 3
    # Bad input: a clear message, a non-zero exit, nothing changed.
    unknown = run(home, "code", "compromise-key", "--kid", "9", "--yes", check=False)
    assert unknown.returncode == 1 and "unknown_key" in unknown.stderr
    wrong = run({**home, "QIYEMA_KEYSTORE_PASSPHRASE": "not it"}, "keys", "list", check=False)
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr and "Traceback" not in wrong.stderr
    no_org = run(home, "keys", "rotate", "--role", "issuer", check=False)
    assert no_org.returncode == 2 and "--organisation" in no_org.stderr
    assert sorted(os.listdir(keys_dir)) == ["governor.json", "notary.json", "registrar.json"]


def test_keys_rotate_and_compromise_from_the_command_line(home):
    run(home, "init")
    rotated = run(home, "keys", "rotate", "--role", "notary").stdout
    assert "now holds NOTARY_ROLE" in rotated and "retired" in rotated
    listed = run(home, "keys", "list").stdout.splitlines()
    notary = [line.split() for line in listed if line.startswith("notary")]
    assert [(n[1], n[3]) for n in notary] == [("1", "retired"), ("2", "active")]
    head = run(home, "chain", "status").stdout
    assert "matches the local build" in head
    done = run(home, "keys", "compromise", "--role", "notary", "--from-block", "all", "--yes").stdout
    assert f"{notary[1][2]} declared compromised from block 0" in done and "took its roles" in done
    listed = run(home, "keys", "list").stdout
    assert "compromised from block 0" in listed and listed.count("notary") == 3
    bad = run(home, "keys", "compromise", "--role", "notary", "--from-block", "soon", "--yes", check=False)
    assert bad.returncode == 2 and "block number or 'all'" in bad.stderr


def test_registration_survives_a_restart_of_service_and_node(home):
    run(home, "init")
    registrar = run(home, "keys", "create", "--org", "市场监管局", "--role", "registrar").stdout.strip()
    port = free_port()
    server = start_server(home, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/enterprises", headers={"Authorization": f"Bearer {registrar}"},
                       json={"uscc": "91350100M000100Y43", "name": "福建示例科技有限公司"}, timeout=30)
        assert r.status_code == 201, r.text
        tx_hash = r.json()["chain"]["tx_hash"]
    finally:
        stop_server(server)
    node_dir = os.path.join(home["QIYEMA_HOME"], "node")
    assert AnvilNode(node_dir, port=int(home["QIYEMA_NODE_PORT"])).pid() is None  # serve stopped its node
    server = start_server(home, port)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/enterprises/91350100M000100Y43",
                      headers={"Authorization": f"Bearer {registrar}"}, timeout=10)
        assert r.status_code == 200
        assert r.json()["chain"] == {**r.json()["chain"], "state": "confirmed", "tx_hash": tx_hash}
        client = ChainClient.from_url(f"http://127.0.0.1:{home['QIYEMA_NODE_PORT']}")
        ledger = QiyemaLedger(client, load_record(os.path.join(home["QIYEMA_HOME"], "deployments"), 31337))
        assert ledger.enterprise(chain_key("91350100M000100Y43")).status == EnterpriseStatus.ACTIVE
    finally:
        stop_server(server)


def test_import_killed_half_way_resumes_without_loss_or_double_registration(home, tmp_path):
    rng = random.Random(11)
    codes = list(dict.fromkeys(generate(rng) for _ in range(6000)))
    path = tmp_path / "register.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["uscc", "name"])
        w.writerows((c, f"企业{i}") for i, c in enumerate(codes))
        w.writerow(["91350100M000100Y44", "坏行"])
    run(home, "init")
    db = os.path.join(home["QIYEMA_HOME"], "qiyema.db")
    proc = subprocess.Popen(CLI + ["enterprises", "import", str(path), "--batch-size", "200"], env=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db) as c:
                stored = c.execute("select count(*) from enterprises").fetchone()[0]
        except sqlite3.OperationalError:
            stored = 0
        if stored >= 1500:
            proc.kill()  # SIGKILL: no clean-up of any kind
            break
        time.sleep(0.02)
    proc.wait()
    assert 0 < stored < len(codes), "the import was not interrupted half-way"
    resumed = run(home, "enterprises", "import", str(path), "--batch-size", "200", check=False)
    assert resumed.returncode == 1, resumed.stderr  # a row was rejected: the exit status says so
    out = resumed.stdout
    assert f"registered {len(codes)}, rejected 1" in out and "resumed" in out
    with sqlite3.connect(db) as c:
        assert c.execute("select count(*), count(distinct uscc) from enterprises").fetchone() == (len(codes), len(codes))
        assert c.execute("select count(*) from enterprises where chain_state != 'confirmed'").fetchone()[0] == 0
    node = AnvilNode(os.path.join(home["QIYEMA_HOME"], "node"), port=int(home["QIYEMA_NODE_PORT"]))
    node.start()
    client = ChainClient.from_url(node.url)
    ledger = QiyemaLedger(client, load_record(os.path.join(home["QIYEMA_HOME"], "deployments"), 31337))
    assert ledger.enterprise_count() == len(codes)  # registerBatch reverts on any duplicate
    assert set(ledger.statuses([chain_key(c) for c in codes[:500]])) == {EnterpriseStatus.ACTIVE}


def test_code_render_scan_and_offline_verification_from_the_command_line(home, tmp_path):
    run(home, "init")
    registrar = run(home, "keys", "create", "--org", "市场监管局", "--role", "registrar").stdout.strip()
    port = free_port()
    server = start_server(home, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/enterprises", headers={"Authorization": f"Bearer {registrar}"},
                       json={"uscc": "91350100M000100Y43", "name": "福建示例科技有限公司"}, timeout=30)
        assert r.status_code == 201
    finally:
        stop_server(server)
    png = tmp_path / "code.png"
    assert "wrote" in run(home, "code", "render", "91350100M000100Y43", "-o", str(png)).stdout
    online = run(home, "code", "scan", str(png))
    assert "verdict: VALID" in online.stdout and "registrar_on_chain" in online.stdout
    keyset = tmp_path / "keyset.json"
    governor = run(home, "code", "keyset", "-o", str(keyset)).stdout.split("trusted governor: ")[1].strip()
    offline = run(home, "code", "scan", str(png), "--offline", str(keyset), "--governor", governor, check=False)
    # Offline proves the code genuine; the company's standing is not known, so it is not VALID.
    assert offline.returncode == 1 and "verdict: SKIPPED" in offline.stdout and "genuine: VALID" in offline.stdout
    wrong = run(home, "code", "scan", str(png), "--offline", str(keyset), "--governor", "0x" + "12" * 20, check=False)
    assert wrong.returncode == 2 and "trusted governor" in wrong.stderr
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), "white").save(blank)
    nothing = run(home, "code", "scan", str(blank), check=False)
    assert nothing.returncode == 1 and "no QR code" in nothing.stderr
    bad = run(home, "uscc", "check", "91350100M000100Y44", check=False)
    assert bad.returncode == 1 and "expected 3" in bad.stderr
    batch = tmp_path / "batch.csv"
    batch.write_text("uscc\n91350100M000100Y43\n91110000600037341L\n")
    out = run(home, "code", "render-batch", str(batch), "-o", str(tmp_path / "codes"), check=False)
    assert out.returncode == 1 and "rendered 1 of 2" in out.stdout
    assert (tmp_path / "codes" / "91350100M000100Y43.svg").exists()
    texts = run(home, "code", "render-batch", str(batch), "-o", str(tmp_path / "texts"), "--format", "txt", check=False)
    assert texts.returncode == 1
    text = (tmp_path / "texts" / "91350100M000100Y43.txt").read_text().strip()
    from codes.scan import scan

    # The same code the printed image carries (its signed content: SM2 signs with a random k).
    assert token.parse(text).message == token.parse(scan(png.read_bytes())[0]).message


def test_several_workers_share_one_node_without_nonce_collisions(home):
    """`serve --workers 3`: registrations sent at once through different worker processes all
    land (the database orders their nonces); SIGTERM stops workers and the node."""
    import concurrent.futures

    run(home, "init")
    registrar = run(home, "keys", "create", "--org", "市场监管局", "--role", "registrar").stdout.strip()
    port = free_port()
    proc = subprocess.Popen(CLI + ["serve", "--port", str(port), "--workers", "3"], env=home,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        rng = random.Random(3)
        codes = list(dict.fromkeys(generate(rng) for _ in range(30)))

        def register(code):
            with httpx.Client(timeout=60) as c:  # a new connection each: spread over workers
                return c.post(f"http://127.0.0.1:{port}/api/v1/enterprises", json={"uscc": code, "name": "并发登记"},
                              headers={"Authorization": f"Bearer {registrar}"}).status_code

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(register, codes))
        assert statuses == [201] * len(codes)
        client = ChainClient.from_url(f"http://127.0.0.1:{home['QIYEMA_NODE_PORT']}")
        ledger = QiyemaLedger(client, load_record(os.path.join(home["QIYEMA_HOME"], "deployments"), 31337))
        assert ledger.enterprise_count() == len(codes)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert AnvilNode(os.path.join(home["QIYEMA_HOME"], "node"), port=int(home["QIYEMA_NODE_PORT"])).pid() is None


def test_demo_fills_a_fresh_home_once_and_prints_how_to_look(home):
    first = run(home, "demo").stdout
    assert "demo district: 6 companies, 3 materials anchored" in first
    assert first.count(f"/V/{CODE_VERSION}S91310110") == 6  # every company a code, all of 杨浦区 (310110)
    logins = [line for line in first.splitlines() if "/login as demo_" in line]
    assert {line.split(" as ")[1].split(" /")[0] for line in logins} == \
        {"demo_enterprise", "demo_clerk", "demo_inspector", "demo_bank", "demo_regulator"}
    again = run(home, "demo").stdout
    assert "already" in again and "/login as" not in again  # nothing created twice, no new passwords


def test_metrics_of_several_workers_and_of_the_background_work_add_up(home):
    """`serve --workers 2`: a scrape answered by either worker counts the requests of both and
    the anchoring done in the parent process (batch sizes, time to proof); the district page's
    scans per hour, written by the parent, hold both workers' scans."""
    from prometheus_client.parser import text_string_to_metric_families

    run(home, "init")
    scraper = {"Authorization": "Bearer " + run(home, "keys", "create", "--org", "运维监控", "--role",
                                                "scraper").stdout.strip()}
    registrar = {"Authorization": "Bearer " + run(home, "keys", "create", "--org", "市场监管局", "--role",
                                                  "registrar").stdout.strip()}
    enterprise = {"Authorization": "Bearer " + run(home, "keys", "create", "--org", "示例", "--role", "enterprise",
                                                   "--scope", "91350100M000100Y43").stdout.strip()}
    port = free_port()
    server = start_server({**home, "QIYEMA_ANCHOR_MAX_WAIT": "0.5", "QIYEMA_SCAN_HOURS_INTERVAL": "1"}, port,
                          "--workers", "2")

    def scrape() -> dict:
        with httpx.Client(timeout=30) as c:  # a new connection: either worker answers
            text = c.get(f"http://127.0.0.1:{port}/metrics", headers=scraper).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid")))
                samples[key] = samples.get(key, 0) + s.value
        return samples

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.post("/api/v1/enterprises", headers=registrar,
                             json={"uscc": "91350100M000100Y43", "name": "福建示例科技有限公司"}).status_code == 201
            m = http.post("/api/v1/materials", headers=enterprise,
                          files={"file": ("合同.pdf", b"%PDF-1.4\n% metrics\n%%EOF\n")}).json()
            assert http.post(f"/api/v1/materials/{m['id']}/confirm", headers=enterprise).status_code == 200
        for _ in range(40):  # each on a new connection, spread over both workers
            with httpx.Client(timeout=30) as c:
                assert c.post(f"http://127.0.0.1:{port}/api/v1/verify/code", json={"code": "x"}).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = scrape()
            if samples.get(("qiyema_anchor_batch_size_count", ()), 0) >= 1:
                break
            time.sleep(0.5)
        assert samples[("qiyema_anchor_batch_size_count", ())] == 1  # anchored in the parent, seen here
        assert samples[("qiyema_time_to_proof_seconds_count", ())] == 1
        for _ in range(5):  # whichever worker answers, the counts are the same: all processes' sum
            assert scrape()[("qiyema_http_request_seconds_count", (
                ("method", "POST"), ("route", "/api/v1/verify/code"), ("status", "200")))] == 40
            assert scrape()[("qiyema_verdicts_total", (
                ("reason", "code_not_qiyema"), ("status", "INVALID"), ("subject", "code")))] == 40
        # The parent writes both workers' scans into the district page's hour, once each.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            district = httpx.get(f"http://127.0.0.1:{port}/api/v1/district", headers=registrar).json()
            if district["scans_24h"]["INVALID"] >= 40:
                break
            time.sleep(0.5)
        time.sleep(2)  # two more writes: nothing is added twice
        district = httpx.get(f"http://127.0.0.1:{port}/api/v1/district", headers=registrar).json()
        assert district["scans_24h"] == {"VALID": 0, "INVALID": 40, "ERROR": 0} and district["invalid_rate"] == 1.0
        assert district["standing"]["active"] == 1
    finally:
        stop_server(server)
