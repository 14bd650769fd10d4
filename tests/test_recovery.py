"""Recovery as it happens (issue 27, item 1): `qiyema serve` started exactly as an operator
starts it — after a chain reset, after a kill in the middle of anchoring, registering, importing
and witnessing, after a node outage — and then only watched. No recovery function is called
by hand: the test polls the chain and the database until the chain witnesses everything the
database holds (enterprises and their standing, static-code keys' roles, enterprises' code
signers, records, the issuers' role terms, anchor batches), then checks as people do (a scanned
code, a material's proof bundle) that the answers say VALID.

The settings that pace recovery are real settings, shortened here: the reconciler's interval,
the anchor batch's wait, the background lease's life (a killed instance's lease must lapse
before the next one works)."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from chain.client import ChainClient
from chain.deploy import load_record
from chain.ledger import QiyemaLedger
from chain.node import AnvilNode
from codes.uscc import generate
from materials_api.bank.models import AnchorBatch, Material
from materials_api.codes.models import CodeKey, EnterpriseCodeSigner
from materials_api.records.models import IssuerAccount, Record
from materials_api.registry.models import Enterprise
from tests.conftest import free_port
from tests.processes import CLI, run, start_server, stop_server
from tests.test_e2e_anvil import home  # noqa: F401 - the fixture: a fresh home with its own node port

pytestmark = [pytest.mark.anvil, pytest.mark.timeout(900)]

# Recovery's pace, shortened: every setting here is one an operator may set.
PACE = {"QIYEMA_RECONCILE_INTERVAL": "0.5", "QIYEMA_ANCHOR_MAX_WAIT": "0.5", "QIYEMA_LEADER_LEASE_TTL": "2"}
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def district(home, tmp_path):  # noqa: F811 - pytest fixture named like the imported one
    """A demo district on its own anvil node (so the test can reset it or take it away), with
    a key for the first company, an issuer and a clerk; yields (env, node, companies, keys)."""
    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    env = {**home, **PACE, "QIYEMA_CHAIN_RPC_URL": node.url}
    try:
        companies = re.findall(r" (9\w{17}): (HTTP://\S+)", run(env, "demo").stdout)
        keys = {"enterprise": run(env, "keys", "create", "--org", "甲", "--role", "enterprise",
                                  "--scope", companies[0][0]).stdout.strip(),
                "issuer": run(env, "keys", "create", "--org", "市场监管局食品科", "--role", "issuer",
                              "--scope", "permit.food").stdout.strip(),
                "registrar": run(env, "keys", "create", "--org", "市场监管局", "--role", "registrar").stdout.strip()}
        yield env, node, companies, {role: {"Authorization": f"Bearer {k}"} for role, k in keys.items()}
    finally:
        node.stop()


def what_the_chain_lacks(env: dict) -> dict[str, list]:
    """Everything the database holds that the chain does not witness (as it stands on the
    node), by kind; empty lists when the two agree."""
    home = Path(env["QIYEMA_HOME"])
    client = ChainClient.from_url(env["QIYEMA_CHAIN_RPC_URL"])
    record = load_record(home / "deployments", client.chain_id)
    if record is None or not client.code_at(record.address):
        return {"contract": [record.address if record else "no deployment record"]}
    ledger = QiyemaLedger(client, record)
    engine = create_engine(f"sqlite:///{home / 'qiyema.db'}")
    try:
        with Session(engine) as s:
            enterprises = {e.id: e for e in s.scalars(select(Enterprise))}
            return {
                "enterprises": [e.uscc for e in enterprises.values() if e.chain_state != "confirmed"
                                or ledger.enterprise(e.uscc_key).status.name.lower() != e.status],
                "static-code keys": [k.kid for k in s.scalars(select(CodeKey).where(CodeKey.status == "active"))
                                     if not ledger.has_role("REGISTRAR_ROLE", k.address)],
                # A signer the database calls confirmed must be the one on chain (one pending is
                # sent before the enterprise's next code: asked for by issuing one).
                "code signers": [row.enterprise_id for row in s.scalars(select(EnterpriseCodeSigner))
                                 if row.chain_state == "confirmed" and ledger.enterprise(
                                     enterprises[row.enterprise_id].uscc_key).code_signer.lower() != row.address.lower()],
                "records": [r.id for r in s.scalars(select(Record)) if r.chain_state != "confirmed"
                            or r.root is None or ledger.anchor_of(r.root) is None],
                "role terms": [f"{a.address} {c}" for a in s.scalars(select(IssuerAccount))
                               for c in a.categories.split(",") if c and not ledger.has_role(f"issuer:{c}", a.address)],
                "anchor batches": [b.id for b in s.scalars(select(AnchorBatch))
                                   if b.state != "confirmed" or ledger.anchor_of(b.root) is None],
                "materials waiting for their batch": [m.id for m in s.scalars(
                    select(Material).where(Material.state == "confirmed"))],
            }
    finally:
        engine.dispose()


def wait_until_witnessed(env: dict, timeout: float = 180.0) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    lacks: dict[str, list] = {}
    while time.monotonic() < deadline:
        lacks = what_the_chain_lacks(env)
        if not any(lacks.values()):
            return lacks
        time.sleep(0.5)
    raise AssertionError(f"after {timeout:.0f} s the chain still lacks {lacks}")


def verdict(http: httpx.Client, path: str, **kwargs) -> str:
    r = http.post(path, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()["status"]


def check_as_people_do(http: httpx.Client, companies, keys) -> None:
    """Every company's static code, a fresh dynamic code and every anchored material: VALID."""
    for uscc, code in companies:
        assert verdict(http, "/api/v1/verify/code", json={"code": code}) == "VALID", uscc
    dynamic = http.post("/api/v1/codes/dynamic", json={}, headers=keys["enterprise"])
    assert dynamic.status_code == 201, dynamic.text
    assert verdict(http, "/api/v1/verify/code", json={"code": dynamic.json()["code"]}) == "VALID"
    for m in http.get("/api/v1/materials", headers=keys["enterprise"]).json()["items"]:
        if m["state"] == "anchored":
            bundle = http.get(f"/api/v1/materials/{m['id']}/proof", headers=keys["enterprise"]).json()
            content = http.get(f"/api/v1/materials/{m['id']}/content", headers=keys["enterprise"]).content
            assert verdict(http, "/api/v1/verify/material", files={"file": ("m.pdf", content)},
                           data={"bundle": json.dumps(bundle)}) == "VALID", m


def serve(env, tmp_path, name, **extra):
    port = free_port()
    return start_server({**env, **extra}, port, log=tmp_path / f"{name}.log"), f"http://127.0.0.1:{port}"


def recovers(env, tmp_path, name, companies, keys) -> None:
    """`qiyema serve` started as an operator starts it, then only watched: the chain comes to
    witness all the database holds, and people's checks say VALID."""
    server, url = serve(env, tmp_path, name)
    try:
        assert not any(wait_until_witnessed(env).values())
        with httpx.Client(base_url=url, timeout=60) as http:
            check_as_people_do(http, companies, keys)
    finally:
        stop_server(server)


def killed(proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Wait for a process to kill itself at its failpoint; its exit code (-9 when it did)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_server(proc)
        raise AssertionError("the process never reached its failpoint") from None


def test_serve_on_a_reset_chain_sends_everything_again(district, tmp_path):
    env, node, companies, keys = district
    server, url = serve(env, tmp_path, "serve-1")
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            # The first company's dynamic-code signer goes on chain with its first code.
            check_as_people_do(http, companies, keys)
            r = http.post("/api/v1/records", headers=keys["issuer"],
                          json={"uscc": companies[0][0], "kind": "food_business", "number": "JY-RESET"})
            assert r.status_code in (201, 202), r.text
        assert not any(wait_until_witnessed(env).values())
    finally:
        stop_server(server)
    node.stop()
    shutil.rmtree(tmp_path / "chain")  # the chain is reset: a new network, nothing on it
    time.sleep(1.1)  # a genesis of another second
    node.start()
    lost = what_the_chain_lacks(env)
    assert lost == {"contract": lost["contract"]}  # nothing of ours is there now

    server, url = serve(env, tmp_path, "serve-2")
    try:
        witnessed = wait_until_witnessed(env)
        assert not any(witnessed.values())
        with httpx.Client(base_url=url, timeout=60) as http:
            check_as_people_do(http, companies, keys)
        # The signer the dynamic code needed went on chain again before the code was signed.
        assert not any(what_the_chain_lacks(env).values())
    finally:
        stop_server(server)
    assert "the chain was reset" in (tmp_path / "serve-2.log").read_text(errors="replace")


@pytest.mark.parametrize("failpoint", ["register.after_send", "anchor.after_send", "anchor.after_receipt",
                                       "records.after_send", "code-signer.after_send"])
def test_serve_killed_in_the_middle_of_a_chain_write_finishes_it_when_started_again(district, tmp_path, failpoint):
    env, node, companies, keys = district
    server, url = serve(env, tmp_path, "serve-1", QIYEMA_FAILPOINT=failpoint)
    newcomer = generate(random.Random(failpoint))
    with httpx.Client(base_url=url, timeout=30) as http:
        try:
            # One of each write; the one that reaches the failpoint kills the whole service.
            http.post("/api/v1/enterprises", json={"uscc": newcomer, "name": "新设企业"}, headers=keys["registrar"])
            m = http.post("/api/v1/materials", files={"file": ("授权书.pdf", PDF + failpoint.encode())},
                          headers=keys["enterprise"]).json()
            http.post(f"/api/v1/materials/{m['id']}/confirm", headers=keys["enterprise"])
            http.post("/api/v1/records", headers=keys["issuer"],
                      json={"uscc": companies[0][0], "kind": "food_business", "number": "JY-" + failpoint})
            http.post("/api/v1/codes/dynamic", json={}, headers=keys["enterprise"])
        except httpx.TransportError:
            pass  # the request that killed it gets no answer
    assert killed(server) == -signal.SIGKILL, f"serve did not die at {failpoint}"

    recovers(env, tmp_path, "serve-2", companies, keys)
    # Each batch anchored exactly once, whatever was in flight when the service died.
    client = ChainClient.from_url(node.url)
    ledger = QiyemaLedger(client, load_record(Path(env["QIYEMA_HOME"]) / "deployments", client.chain_id))
    roots = [e["args"]["root"] for e in client.events(ledger.contract.events.BatchAnchored, 0)]
    assert len(roots) == len(set(roots))


def test_an_import_killed_half_way_is_finished_by_serve(district, tmp_path):
    env, node, companies, keys = district
    rng = random.Random(27)
    codes = list(dict.fromkeys(generate(rng) for _ in range(3000)))
    path = tmp_path / "register.csv"
    path.write_text("uscc,name\n" + "".join(f"{c},企业{i}\n" for i, c in enumerate(codes)), encoding="utf-8")
    proc = subprocess.Popen(CLI + ["enterprises", "import", str(path), "--batch-size", "200"],
                            env={**env, "QIYEMA_FAILPOINT": "import.after_send"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert killed(proc) == -signal.SIGKILL
    lacks = what_the_chain_lacks(env)
    assert lacks["enterprises"], "the import died with nothing left to do"

    recovers(env, tmp_path, "serve", companies, keys)  # not the import again: the service finishes it


def test_serve_through_a_node_outage_sends_what_waited_once_the_node_is_back(district, tmp_path):
    env, node, companies, keys = district
    server, url = serve(env, tmp_path, "serve")
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            node.stop()  # the node goes away; people keep working
            accepted = []
            for i in range(3):
                m = http.post("/api/v1/materials", files={"file": (f"停机{i}.pdf", PDF + b"outage %d" % i)},
                              headers=keys["enterprise"])
                assert m.status_code == 201, m.text
                accepted.append(http.post(f"/api/v1/materials/{m.json()['id']}/confirm",
                                          headers=keys["enterprise"]).status_code)
            r = http.post("/api/v1/records", headers=keys["issuer"],
                          json={"uscc": companies[0][0], "kind": "food_business", "number": "JY-OUTAGE"})
            accepted.append(r.status_code)
            assert set(accepted) <= {200, 201, 202}, accepted
            # Many reconciler passes fail meanwhile (the outage lasts 40 of them); none gives up.
            time.sleep(20 * float(PACE["QIYEMA_RECONCILE_INTERVAL"]) * 2)
            assert server.poll() is None
            node.start()
            assert not any(wait_until_witnessed(env).values())
            check_as_people_do(http, companies, keys)
    finally:
        stop_server(server)
