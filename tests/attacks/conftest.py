"""The attack suite's ground: the real service (its app, runtime and background parts) on a real
anvil node, and what an attacker brings — funded accounts of its own and a second deployment of
the very same contracts, governed by the attacker (docs/threat-model.md names each test)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chain.client import ChainClient
from chain.deploy import deploy
from chain.keys import load_or_create
from chain.ledger import QiyemaLedger
from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle
from materials_api.main import create_app
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime

USCC = "91350100M000100Y43"
FORGED = b"%PDF-1.7\n" + "伪造的营业执照 forged licence ".encode() * 200 + b"\n%%EOF\n"


@pytest.fixture
def service(tmp_path, anvil_node, database_url):
    """The service on anvil: (TestClient, runtime)."""
    settings = Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url=anvil_node.url,
                        mirror_max_age=0, register_batch_size=50)
    runtime = Runtime.open(settings, client=ChainClient.from_url(anvil_node.url))
    try:
        with TestClient(create_app(runtime, reconcile=False)) as api:
            yield api, runtime
    finally:
        runtime.close()


class Attacker:
    """Someone with a funded account: deploys the real contracts with itself as governor and
    notary, and anchors what it likes there."""

    def __init__(self, client: ChainClient, home: Path):
        self.client = client
        self.key = load_or_create(home / "attacker.eth")
        client.fund(self.key.address, 10**20)
        record, _ = deploy(client, self.key, home / "deployments", grants={"NOTARY_ROLE": [self.key.address]})
        self.deployment = record
        self.ledger = QiyemaLedger(client, record)

    def forged_bundle(self, content: bytes | None, entity: bytes, *, category: str | None = None,
                      content_sha256: bytes | None = None) -> ProofBundle:
        digest = content_sha256 if content_sha256 is not None else hashlib.sha256(content).digest()
        leaves = [LeafInput(digest, entity, "business_licence", 1, 0, 0,
                            secrets.token_bytes(32))]
        tree = MerkleTree([leaf.hash() for leaf in leaves])
        if category is None:
            receipt = self.ledger.anchor(self.key, tree.root, 1)
        else:
            self.ledger.grant_role(self.key, f"issuer:{category}", self.key.address)
            receipt = self.client.wait(self.ledger.send_issue_records(self.key, category, [tree.root], [1]))
        anchor = Anchor(self.client.chain_id, self.deployment.address, receipt.tx_hash, receipt.block_number)
        return ProofBundle(leaves[0], tree.proof(0), tree.root, anchor, category=category)


@pytest.fixture
def attacker(service, tmp_path):
    _, runtime = service
    return Attacker(runtime.chain.client, tmp_path / "attacker")


def keys_for(runtime: Runtime) -> dict[str, dict]:
    """Authorization headers: the registrar, the enterprise of USCC, a bank."""
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role

    out = {}
    with runtime.sessions.begin() as s:
        for name, role, scope in (("registrar", Role.REGISTRAR, None), ("enterprise", Role.ENTERPRISE, USCC),
                                  ("bank", Role.BANK, None)):
            _, plain = create_key(s, f"org-{name}", role, scope)
            out[name] = {"Authorization": f"Bearer {plain}"}
    return out


def deposit(api, runtime, keys, content: bytes) -> dict:
    """The enterprise deposits, confirms and the service anchors one material; its proof bundle."""
    return deposit_batch(api, keys, [content])[0]


def deposit_batch(api, keys, contents: list[bytes]) -> list[dict]:
    """Several materials deposited and confirmed, then anchored together in one batch."""
    if api.get(f"/api/v1/enterprises/{USCC}", headers=keys["registrar"]).status_code != 200:
        r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"}, headers=keys["registrar"])
        assert r.status_code == 201, r.text
    ids = []
    for content in contents:
        r = api.post("/api/v1/materials", headers=keys["enterprise"],
                     files={"file": ("租赁合同.pdf", content, "application/pdf")}, data={"folder": "lease_contract"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        assert api.post(f"/api/v1/materials/{ids[-1]}/confirm", headers=keys["enterprise"]).status_code == 200
    assert api.app.state.anchorer.run_once(force=True).anchored >= len(contents)
    out = []
    for material_id in ids:
        r = api.get(f"/api/v1/materials/{material_id}/proof", headers=keys["enterprise"])
        assert r.status_code == 200, r.text
        out.append({"id": material_id, "bundle": r.json()})
    return out
