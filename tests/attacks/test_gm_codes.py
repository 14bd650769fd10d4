"""Attack: make a 国密 (gm profile) deployment say VALID for a code it did not sign. Its codes
are SM2, which recovers no signer: the verifier takes a public key from the database (or the
key set) and the chain says which key id counts. So the attacks are on that seam — a public key
swapped in the database, a key of the attacker's own written beside a listed key id, a code
signed the other profile's way by a key that does hold the registrar role on chain — and each
must end INVALID, with the chain (not the database) deciding. On a real anvil node."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from chain.client import ChainClient
from chain.crypto_profile import Sm2Signer, sm2_key_id
from codes import token
from codes.scan import scan
from codes.keyset import KeySet, OfflineSource
from codes.verify import verify
from materials_api.codes.models import CodeKey, EnterpriseCodeSigner
from materials_api.main import create_app
from materials_api.platform.config import Settings
from materials_api.platform.runtime import Runtime
from tests.attacks.conftest import USCC, keys_for

pytestmark = pytest.mark.anvil


@pytest.fixture
def gm_service(tmp_path, anvil_node, database_url):
    settings = Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url=anvil_node.url,
                        mirror_max_age=0, register_batch_size=50, crypto_profile="gm")
    runtime = Runtime.open(settings, client=ChainClient.from_url(anvil_node.url))
    try:
        with TestClient(create_app(runtime, reconcile=False)) as api:
            keys = keys_for(runtime)
            r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"},
                         headers=keys["registrar"])
            assert r.status_code == 201, r.text
            yield api, runtime, keys
    finally:
        runtime.close()


def static_url(api, keys) -> str:
    r = api.get(f"/api/v1/enterprises/{USCC}/code.png", headers=keys["registrar"])
    assert r.status_code == 200, r.text
    return scan(r.content)[0]


def reasons(body: dict) -> dict:
    return {c["name"]: c["reason"] for c in body["checks"]}


def check(api, code: str) -> dict:
    r = api.post("/api/v1/verify/code", json={"code": code})
    assert r.status_code == 200, r.text
    return r.json()


def test_gm_codes_are_sm2_and_the_chain_holds_their_key_ids(gm_service):
    api, runtime, keys = gm_service
    static = static_url(api, keys)
    assert static.startswith(runtime.settings.public_url.upper().rstrip("/") + "/V/2S" + USCC)
    body = check(api, static)
    assert body["status"] == "VALID" and reasons(body)["issuer"] == "registrar_on_chain"
    with runtime.sessions() as s:
        row = s.query(CodeKey).one()
    assert row.address == sm2_key_id(row.public_key) == body["signer"]
    assert runtime.chain.ledger.has_role("REGISTRAR_ROLE", row.address)
    dynamic = api.post("/api/v1/codes/dynamic", json={}, headers=keys["enterprise"]).json()["code"]
    assert "/V/2D" in dynamic
    body = check(api, dynamic)
    assert body["status"] == "VALID" and reasons(body)["signature"] == "signed"
    with runtime.sessions() as s:
        signer = s.query(EnterpriseCodeSigner).one()
    assert runtime.chain.ledger.enterprise(bytes.fromhex(_chain_key())).code_signer.lower() == \
        sm2_key_id(signer.public_key).lower()
    # The key set an inspector caches: version 2, the profile, the public keys; offline VALID.
    ks = api.get("/api/v1/codes/keyset").json()
    assert ks["version"] == 2 and ks["profile"] == "gm" and ks["keys"][0]["public_key"] == row.public_key.hex()
    offline = OfflineSource(KeySet.from_json(ks), runtime.chain.governor.address)
    assert verify(static, offline).facts["genuine"] == "VALID"


def _chain_key() -> str:
    from codes.uscc import chain_key

    return chain_key(USCC).hex()


def test_a_public_key_swapped_in_the_database_makes_no_code_valid(gm_service):
    """Whoever writes to the database puts their own SM2 key where the enterprise's public key
    is kept and signs dynamic codes with it: the chain holds the real key's id, so INVALID."""
    api, runtime, keys = gm_service
    api.post("/api/v1/codes/dynamic", json={}, headers=keys["enterprise"])  # the real key, on chain
    mallory = Sm2Signer.generate()
    with runtime.sessions.begin() as s:
        s.execute(update(EnterpriseCodeSigner).values(public_key=mallory.public_key, address=mallory.address))
    forged = token.dynamic_code(runtime.settings.public_url, USCC, int(runtime.clock.time()),
                                int(runtime.clock.time()) + 300, b"\x01" * 12, mallory)
    body = check(api, forged)
    assert body["status"] == "INVALID" and reasons(body)["signature"] == "bad_signature"


def test_a_static_key_of_the_attackers_own_written_into_the_key_table_is_not_a_registrar(gm_service):
    """The attacker rewrites key 1's row (id and public key) to an SM2 key of their own: the
    signature then checks, but the chain never gave that key id the registrar role."""
    api, runtime, keys = gm_service
    genuine = static_url(api, keys)
    kid = token.parse(genuine).kid
    real_id = check(api, genuine)["signer"]
    mallory = Sm2Signer.generate()
    with runtime.sessions.begin() as s:
        s.execute(update(CodeKey).where(CodeKey.kid == kid).values(public_key=mallory.public_key,
                                                                    address=mallory.address))
    forged = token.static_code(runtime.settings.public_url, "91110000600037341L", kid, mallory)
    body = check(api, forged)
    assert body["status"] == "INVALID" and reasons(body)["issuer"] == "not_registrar"
    # Only the public key swapped (the id left as the chain knows it): the key is not the id's.
    with runtime.sessions.begin() as s:
        s.execute(update(CodeKey).where(CodeKey.kid == kid).values(address=real_id))
    body = check(api, forged)
    assert body["status"] == "INVALID" and reasons(body)["signature"] == "bad_signature"


def test_a_secp256k1_code_by_a_real_registrar_account_is_refused_by_a_gm_deployment(gm_service):
    """The registrar's chain account (secp256k1) holds the registrar role on this very chain; a
    code it signs the intl way is still not a code of this deployment."""
    api, runtime, keys = gm_service
    registrar = runtime.chain.registrar
    assert runtime.chain.ledger.has_role("REGISTRAR_ROLE", registrar.address)
    forged = token.static_code(runtime.settings.public_url, USCC, 1, registrar)
    body = check(api, forged)
    assert body["status"] == "INVALID" and reasons(body)["format"] == "code_profile"


def test_rotation_and_compromise_work_under_gm_as_under_intl(gm_service):
    api, runtime, keys = gm_service
    governor = {"Authorization": _governor_key(runtime)}
    first = static_url(api, keys)
    assert api.post("/api/v1/codes/keys/rotate", headers=governor).status_code == 200
    second = static_url(api, keys)
    assert token.parse(second).kid == token.parse(first).kid + 1
    body = check(api, first)
    assert body["status"] == "VALID" and reasons(body)["key"] == "key_retired"
    assert reasons(check(api, second))["key"] == "key_active"
    r = api.post(f"/api/v1/codes/keys/{token.parse(first).kid}/compromise", headers=governor)
    assert r.status_code == 200, r.text
    body = check(api, first)
    assert body["status"] == "INVALID" and reasons(body)["key"] == "key_compromised"
    assert check(api, second)["status"] == "VALID"


def _governor_key(runtime) -> str:
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role

    with runtime.sessions.begin() as s:
        _, plain = create_key(s, "org-governor", Role.GOVERNOR)
    return f"Bearer {plain}"
