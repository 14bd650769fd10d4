"""Attack: make a liveness fault look like a forgery, or crash the public edge, or learn the
node's address from a public answer. A node behind the anchoring block, a node that lost its
state and a dead node are ERROR with a reason code; nothing public names a URL."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.attacks.conftest import USCC, deposit, keys_for

pytestmark = pytest.mark.anvil
GENUINE = b"%PDF-1.7\n" + "房屋租赁合同 genuine lease ".encode() * 300 + b"\n%%EOF\n"


def _verify(api, bundle, content=GENUINE):
    r = api.post("/api/v1/verify/material", json={"sha256": hashlib.sha256(content).hexdigest(), "bundle": bundle})
    assert r.status_code == 200, r.text
    body = r.json()
    return body, {c["name"]: (c["status"], c["reason"]) for c in body["checks"]}


def test_a_node_behind_the_anchoring_block_says_error_not_invalid(service):
    api, runtime = service
    keys = keys_for(runtime)
    rpc = runtime.chain.client
    snapshot = rpc.request("evm_snapshot", [])
    got = deposit(api, runtime, keys, GENUINE)
    body, checks = _verify(api, got["bundle"])
    assert body["status"] == "VALID", body
    # The node falls back to before the anchoring (a lagging replica, a node still syncing).
    assert rpc.request("evm_revert", [snapshot]) is True
    body, checks = _verify(api, got["bundle"])
    assert body["status"] == "ERROR" and checks["anchor"] == ("ERROR", "node_behind"), body


def test_a_node_that_lost_its_state_is_error_and_never_a_crash(service):
    api, runtime = service
    keys = keys_for(runtime)
    got = deposit(api, runtime, keys, GENUINE)
    url, _ = api.app.state.codes.static_code(USCC)
    runtime.chain.client.request("anvil_setCode", [runtime.chain.deployment.address, "0x"])
    body, checks = _verify(api, got["bundle"])
    assert body["status"] == "ERROR" and checks["anchor"] == ("ERROR", "node_malformed"), body
    # The anonymous scan and the page a scanned code opens: an answer, never a 500.
    api.app.state.codes.roles.clear() if hasattr(api.app.state.codes.roles, "clear") else None
    r = api.post("/api/v1/verify/code", json={"code": url})
    assert r.status_code == 200 and r.json()["status"] != "INVALID", r.text
    page = api.get(url[url.index("/V/"):])
    assert page.status_code == 200


def test_public_answers_never_name_the_node(service):
    api, runtime = service
    keys = keys_for(runtime)
    got = deposit(api, runtime, keys, GENUINE)
    url = runtime.settings.chain_rpc_url
    host_port = url.split("//", 1)[1]
    runtime.chain.client.request("anvil_setCode", [runtime.chain.deployment.address, "0x"])
    body, _ = _verify(api, got["bundle"])
    assert host_port not in json.dumps(body, ensure_ascii=False)
    health = api.get("/healthz")
    assert host_port not in health.text and str(runtime.settings.home) not in health.text
