"""Attack: sign an enterprise's dynamic code (亮码) with a key taken from the service.

Before, every enterprise's key was derived from one master secret: whoever read it (an old
keystore and its passphrase, a token's data object) could sign any enterprise's codes, for every
key version to come. Now each key is made in the key store and the database holds it only
wrapped; a key from before is replaced at its next use (docs/threat-model.md)."""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import select

from chain.keystore import FileKeyStore, KeyStoreError, WrappedKey
from codes import token as tokens
from codes.uscc import chain_key
from materials_api.codes.models import DynamicCode, EnterpriseCodeSigner
from materials_api.platform.models import ChainState
from materials_api.registry.models import Enterprise
from tests.attacks.conftest import USCC, keys_for
from tests.conftest import stranger_code_signer


def _verify(api, code: str) -> dict:
    return api.post("/api/v1/verify/code", json={"code": code}).json()


def _forge(runtime, signer, nonce: bytes) -> str:
    """A code for a nonce the service issued (one the thief saw), signed by `signer`."""
    now = int(time.time())
    return tokens.dynamic_code(tokens.normalise_origin(runtime.settings.public_url), USCC, now, now + 120,
                               nonce, signer)


def test_a_key_from_before_wrapping_stops_signing_and_the_database_holds_no_key(service, tmp_path):
    api, runtime = service
    keys = keys_for(runtime)
    r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"}, headers=keys["registrar"])
    assert r.status_code == 201, r.text
    # An install from before wrapped keys: the enterprise's key (derived from the master secret
    # the thief holds) is its code signer on chain and in the database.
    stolen = stranger_code_signer()
    ledger = runtime.chain.ledger
    runtime.chain.client.wait(ledger.send_rotate_code_signer(runtime.chain.registrar, chain_key(USCC), stolen.address))
    with runtime.sessions.begin() as s:
        enterprise = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC))
        s.add(EnterpriseCodeSigner(enterprise_id=enterprise.id, key_version=1, address=stolen.address,
                                   public_key=getattr(stolen, "public_key", None),  # SM2: the key it checks
                                   chain_state=ChainState.CONFIRMED.value))
        seen = secrets.token_bytes(12)  # a code that install issued, the thief saw on a counter
        now = int(time.time())
        s.add(DynamicCode(nonce=seen.hex(), enterprise_id=enterprise.id, issued_at=now, expires_at=now + 120))
    assert _verify(api, _forge(runtime, stolen, seen))["status"] == "VALID"  # what the thief could do before

    # The enterprise's next code replaces the key; the stolen one signs nothing from then on.
    issued = api.post("/api/v1/codes/dynamic", json={}, headers=keys["enterprise"])
    assert issued.status_code == 201, issued.text
    assert _verify(api, issued.json()["code"])["status"] == "VALID"
    forged = _verify(api, _forge(runtime, stolen, tokens.parse(issued.json()["code"]).nonce))
    assert forged["status"] == "INVALID"
    assert {c["name"]: c["reason"] for c in forged["checks"]}["signature"] == "bad_signature"

    with runtime.sessions() as s:
        row = s.get(EnterpriseCodeSigner, enterprise.id)
    assert row.key_version == 2 and row.address != stolen.address
    assert ledger.enterprise(chain_key(USCC)).code_signer == row.address
    # What the database holds is no key: the key it wraps is not in it ...
    key = WrappedKey(*row.wrapped_by.split(":"), bytes(row.public_key), bytes(row.wrapped_key),
                     api.app.state.codes.scheme)
    owner = b"enterprise-code-signer:" + USCC.encode()
    private = runtime.chain.keys.store.wrapped_signer(key, owner).private_bytes()
    assert private not in bytes(row.wrapped_key) and private.hex() not in row.wrapped_by
    # ... and a thief with the database and a key store of its own opens nothing.
    thief = FileKeyStore(tmp_path / "thief-keys", b"thief", scrypt_n=2)
    with pytest.raises(KeyStoreError) as refused:
        thief.wrapped_signer(key, owner)
    assert refused.value.code == "key_missing"
    thief.new_wrapped_key(key.wrapping, owner)  # the thief's own wrapping key of that name
    with pytest.raises(KeyStoreError) as refused:
        thief.wrapped_signer(key, owner)
    assert refused.value.code == "wrapped_key_invalid"
    # Nor does the service's own store open it for another enterprise (bytes swapped between rows).
    with pytest.raises(KeyStoreError) as refused:
        FileKeyStore(runtime.settings.keys_dir, _passphrase(runtime)).wrapped_signer(key, b"enterprise-code-signer:x")
    assert refused.value.code == "wrapped_key_invalid"


def _passphrase(runtime) -> bytes:
    from materials_api.platform.keys import keystore_passphrase

    return keystore_passphrase(runtime.settings)
