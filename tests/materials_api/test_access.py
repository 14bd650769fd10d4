"""The access policy's own decisions, one by one (materials_api/bank/access.py): what a scanned
code's grant lets a bank read, and what the enterprise's access log says of each refusal."""

from __future__ import annotations

import time

from sqlalchemy import select

from materials_api.bank.access import AccessPolicy
from materials_api.bank.consent import ConsentService
from materials_api.bank.models import AccessLogEntry
from materials_api.identity.api_keys import authenticate, create_key
from materials_api.identity.models import Role
from materials_api.registry.service import EnterpriseService

A, B = "91350100M000100Y43", "91110108MA01ABCD1E"
BANK = "工商银行杨浦支行"


def _principal(runtime, org, role, scope=None):
    with runtime.sessions.begin() as s:
        _, plain = create_key(s, org, role, scope)
    with runtime.sessions() as s:
        return authenticate(s, plain)


def test_a_code_s_grant_opens_only_its_own_enterprise_to_its_own_bank_while_it_lasts(runtime):
    registry = EnterpriseService(runtime.sessions, runtime.chain)
    a, b = registry.register(A, "甲公司"), registry.register(B, "乙公司")
    access = AccessPolicy(runtime.sessions, runtime.clock)
    consent = ConsentService(runtime.sessions, access)
    bank = _principal(runtime, BANK, Role.BANK)
    other_bank = _principal(runtime, "另一家银行", Role.BANK)
    ends = int(runtime.clock.time()) + 600

    def grant(enterprise, uscc):
        return consent.grant(enterprise, _principal(runtime, uscc, Role.ENTERPRISE, uscc), verifier_organisation=BANK,
                             material_ids=[], material_types=["lease_contract"], purpose="开立对公账户",
                             expires_at=ends, known_types={"lease_contract"})

    of_a, of_b = grant(a, A), grant(b, B)
    assert access.grant_use(bank, a, of_a.id)[0].id == of_a.id
    # B's grant to this very bank, carried in a code of A's: opens nothing of A's.
    assert access.grant_use(bank, a, of_b.id) == (None, "the grant is for another organisation")
    assert access.grant_use(other_bank, a, of_a.id) == (None, "the grant is for another organisation")
    assert access.grant_use(bank, a, 999_999) == (None, "the grant is for another organisation")
    runtime.clock.advance(601)
    assert access.grant_use(bank, a, of_a.id) == (None, "the grant is revoked or expired")

    with runtime.sessions() as s:
        log = [(e.organisation, e.action, e.outcome, e.reason, e.purpose) for e in s.scalars(
            select(AccessLogEntry).where(AccessLogEntry.enterprise_id == a.id).order_by(AccessLogEntry.id))]
    denied_other = (BANK, "consent_use", "denied", "grant is for another organisation", None)
    assert log == [denied_other, ("另一家银行", "consent_use", "denied", "grant is for another organisation", None),
                   denied_other, (BANK, "consent_use", "denied", "grant revoked or expired", "开立对公账户")]
    assert time.time() < ends  # the grant ended by the service's clock, not by waiting
