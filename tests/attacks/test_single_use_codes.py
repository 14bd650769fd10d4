"""Attack: make a company's single-use code (亮码) useless, or use its consent past its life
(issue 26, item 6). A chat app's link preview opens the code's URL before the bank does; a
60-second code must not leave a 24-hour consent behind; an expired code opens nothing."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import select

from codes import token as tokens
from materials_api.bank.models import ConsentGrant
from materials_api.codes.models import DynamicCode
from materials_api.registry.models import Enterprise
from tests.attacks.conftest import USCC, deposit, keys_for

LICENCE = b"%PDF-1.7\n" + "营业执照副本 ".encode() * 300 + b"\n%%EOF\n"


def _scan(api, code: str, who: dict | None = None) -> dict:
    return api.post("/api/v1/verify/code", json={"code": code}, headers=who or {}).json()


def test_a_link_preview_uses_up_nothing_and_a_code_carries_consent_only_while_it_lives(service):
    api, runtime = service
    keys = keys_for(runtime)
    deposit(api, runtime, keys, LICENCE)
    r = api.post("/api/v1/codes/dynamic", headers=keys["enterprise"], json={
        "ttl_seconds": 60, "single_use": True,
        "scope": {"verifier_org": "org-bank", "material_types": ["lease_contract"], "purpose": "开立对公账户",
                  "expires_at": int(time.time()) + 86400}})
    assert r.status_code == 201, r.text
    issued = r.json()
    # The preview bot (and the person who opens the link) see the verdict and use up nothing.
    for _ in range(2):
        page = api.get(issued["code"])  # the code's own URL, as the bot fetches it
        assert page.status_code == 200 and "真实有效" in page.text, page.text[:400]
    # The bank's scan is the one use: VALID, with exactly the consented materials.
    first = _scan(api, issued["code"], keys["bank"])
    assert first["status"] == "VALID", first
    assert first["view"]["materials"]["status"] == "granted" and len(first["view"]["materials"]["items"]) == 1
    again = _scan(api, issued["code"], keys["bank"])
    assert again["status"] == "INVALID" and again["view"]["materials"]["items"] == []
    # The grant the code made ends with the code, whatever the request asked for.
    with runtime.sessions() as s:
        grant = s.get(ConsentGrant, issued["scope"]["grant_id"])
    assert grant.expires_at <= issued["expires_at"]

    # An expired code of the enterprise (genuine, signed by its key, carrying a live grant) opens nothing.
    live = api.post("/api/v1/consents", headers=keys["enterprise"], json={
        "verifier_organisation": "org-bank", "material_types": ["lease_contract"], "purpose": "贷款审批",
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))})
    assert live.status_code == 201, live.text
    codes = api.app.state.codes
    with runtime.sessions() as s:
        enterprise = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC))
    now, nonce = int(time.time()), secrets.token_bytes(12)
    scope = {"grant_id": live.json()["id"]}
    from materials_api.codes.online_source import scope_digest

    expired = tokens.dynamic_code(codes.origin, USCC, now - 120, now - 60, nonce, codes.enterprise_signer(enterprise),
                                  scope_digest=scope_digest(scope))
    import json

    with runtime.sessions.begin() as s:
        s.add(DynamicCode(nonce=nonce.hex(), enterprise_id=enterprise.id, issued_at=now - 120, expires_at=now - 60,
                          scope=json.dumps(scope, sort_keys=True)))
    late = _scan(api, expired, keys["bank"])
    assert late["status"] == "INVALID" and {c["name"]: c["reason"] for c in late["checks"]}["expiry"] == "expired"
    assert late["view"]["materials"]["status"] == "denied" and late["view"]["materials"]["items"] == []
