"""Bounded waiting on a hung chain node (stopped with SIGSTOP: it accepts connections and never
answers, unlike a closed port): verification says ERROR `chain_timeout` within the request
time-out, the next ones at once (circuit open), and VALID again once the node answers."""

import json
import os
import signal
import subprocess
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from chain.errors import ChainTimeout

from chain.clock import MovableClock
from chain.node import AnvilNode
from materials_api.bank.models import AnchorBatch
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.main import create_app
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime
from tests.conftest import free_port
from tests.processes import CLI

pytestmark = pytest.mark.anvil

USCC = "91350100M000100Y43"
PDF = b"%PDF-1.7\n" + b"contract " * 200 + b"\n%%EOF\n"


def _reasons(verdict: dict) -> set[str]:
    return {c["reason"] for c in verdict["checks"] if c["status"] == "ERROR"}


def _confirmed_material(api, runtime) -> tuple[dict, str]:
    """The company registered, one contract uploaded and confirmed (not yet anchored); the
    material and the company's key."""
    with runtime.sessions.begin() as s:
        registrar = "Bearer " + create_key(s, "市场监管局", Role.REGISTRAR)[1]
        enterprise = "Bearer " + create_key(s, "示例", Role.ENTERPRISE, USCC)[1]
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"},
                    headers={"Authorization": registrar}).status_code == 201
    m = api.post("/api/v1/materials", headers={"Authorization": enterprise}, files={"file": ("合同.pdf", PDF)}).json()
    api.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": enterprise})
    return m, enterprise


def test_a_hung_node_costs_one_time_out_then_answers_come_at_once(tmp_path):
    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    settings = Settings(home=tmp_path / "home", chain_rpc_url=node.url, chain_request_timeout=2.0,
                        chain_breaker_cooldown=3.0)
    runtime = Runtime.open(settings, clock=MovableClock())
    try:
        with TestClient(create_app(runtime, reconcile=False)) as api:
            m, enterprise = _confirmed_material(api, runtime)
            assert api.app.state.anchorer.run_once(force=True).anchored == 1
            bundle = api.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": enterprise}).json()
            (tmp_path / "m.pdf").write_bytes(PDF)
            (tmp_path / "m.proof.json").write_text(json.dumps(bundle))

            def verify():
                started = time.monotonic()
                r = api.post("/api/v1/verify/material", files={"file": ("m.pdf", PDF)},
                             data={"bundle": json.dumps(bundle)})
                assert r.status_code == 200
                return r.json(), time.monotonic() - started

            assert verify()[0]["status"] == "VALID"
            (tmp_path / "trust.json").write_text(json.dumps(runtime.chain.trust_list.to_json()))
            os.kill(node.pid(), signal.SIGSTOP)
            try:
                first, took = verify()
                assert first["status"] == "ERROR" and "chain_timeout" in _reasons(first)
                assert took < 2.0 + 1.0  # one request time-out, not one per check (it was 53 s)
                second, took = verify()
                assert second["status"] == "ERROR" and "chain_timeout" in _reasons(second)
                assert took < 0.5  # the circuit is open: the node is not asked
                # The standalone verifier (what a bank runs against its node) is bounded too.
                started = time.monotonic()
                out = subprocess.run(CLI + ["material", "verify", str(tmp_path / "m.pdf"), "--proof",
                                            str(tmp_path / "m.proof.json"), "--rpc", node.url,
                                            "--trust-list", str(tmp_path / "trust.json"),
                                            "--governor", runtime.chain.governor.address],
                                     env={**os.environ, "QIYEMA_HOME": str(tmp_path / "cli-home"),
                                          "QIYEMA_CHAIN_REQUEST_TIMEOUT": "2"},
                                     capture_output=True, text=True, timeout=60)
                assert out.returncode != 0 and "chain_timeout" in out.stdout + out.stderr
                assert time.monotonic() - started < 15  # python's start-up plus one time-out
            finally:
                os.kill(node.pid(), signal.SIGCONT)
            runtime.clock.advance(3.2)  # the cool-down: then one call probes the node, and it answers
            again, took = verify()
            assert again["status"] == "VALID" and took < 2.0
    finally:
        runtime.close()
        node.stop()


def test_an_anchoring_transaction_the_node_dropped_is_sent_again(tmp_path):
    """The anchor batch is SENT, its transaction never mined and then gone from the node's pool
    (a node restarted, or the side of a fork that was given up): the next pass anchors it again
    instead of waiting on that hash for ever."""
    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    runtime = Runtime.open(Settings(home=tmp_path / "home", chain_rpc_url=node.url, chain_timeout=1.0),
                           clock=MovableClock())
    try:
        with TestClient(create_app(runtime, reconcile=False)) as api:
            m, enterprise = _confirmed_material(api, runtime)
            client, anchorer = runtime.chain.client, api.app.state.anchorer
            client.request("evm_setAutomine", [False])
            with pytest.raises(ChainTimeout):
                anchorer.run_once(force=True)  # sent, never mined
            with runtime.sessions() as s:
                batch = s.scalars(select(AnchorBatch)).one()
            assert batch.state == "sent" and batch.tx_hash
            client.request("anvil_dropTransaction", [batch.tx_hash])
            assert client.request("eth_getTransactionByHash", [batch.tx_hash]) is None
            client.request("evm_setAutomine", [True])
            assert anchorer.run_once().anchored == 1
            assert api.get(f"/api/v1/materials/{m['id']}", headers={"Authorization": enterprise}).json()["state"] \
                == "anchored"
            bundle = api.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": enterprise}).json()
            r = api.post("/api/v1/verify/material", files={"file": ("m.pdf", PDF)}, data={"bundle": json.dumps(bundle)})
            assert r.json()["status"] == "VALID"
    finally:
        runtime.close()
        node.stop()
