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


def test_head_age_is_checked_by_default(service):
    """A halted chain cannot show a revocation sent since: every verdict checks the head's age by
    default (120 s), not only when an operator remembered to turn it on."""
    from materials_api.platform.config import Settings

    assert Settings().chain_max_head_age > 0 and Settings().node_block_time > 0
    api, runtime = service
    assert runtime.settings.chain_max_head_age == Settings().chain_max_head_age
    got = deposit(api, runtime, keys_for(runtime), GENUINE)
    _, checks = _verify(api, got["bundle"])
    assert checks["liveness"] == ("VALID", "chain_live")
    # The same bundle read as if ten minutes had passed with no block: ERROR chain_halted.
    import time

    from chain.material_verify import verify_material
    from chain.proof import ProofBundle

    late = verify_material(ProofBundle.from_json(got["bundle"]), content_sha256=hashlib.sha256(GENUINE).digest(),
                           client=runtime.chain.client, trust=runtime.chain.trust,
                           max_head_age=runtime.settings.chain_max_head_age, now=int(time.time()) + 600)
    assert late.status.value == "ERROR" and late.check("liveness").reason == "chain_halted"


def test_the_managed_node_seals_on_a_clock_and_on_every_transaction(tmp_path):
    """Mixed mining: the development node's head moves without traffic (so its age means
    something), and a transaction is still mined at once."""
    import time

    from chain.client import ChainClient
    from chain.node import AnvilNode
    from tests.conftest import free_port

    node = AnvilNode(tmp_path / "node", port=free_port(), block_time=1)
    node.start()
    try:
        client = ChainClient.from_url(node.url)
        first = client.block_number()
        deadline = time.monotonic() + 10
        while client.block_number() == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.block_number() > first  # sealed without any transaction
        started = time.monotonic()
        client.fund("0x" + "42" * 20, 1)
        assert time.monotonic() - started < 0.9  # automine: not held for the next tick
    finally:
        node.stop()
