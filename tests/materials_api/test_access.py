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
    runtime.clock.advance(599)  # its last second: still good
    assert access.grant_use(bank, a, of_a.id)[0].id == of_a.id
    runtime.clock.advance(1)  # its end: over
    assert access.grant_use(bank, a, of_a.id) == (None, "the grant is revoked or expired")

    with runtime.sessions() as s:
        log = [(e.organisation, e.action, e.outcome, e.reason, e.purpose) for e in s.scalars(
            select(AccessLogEntry).where(AccessLogEntry.enterprise_id == a.id).order_by(AccessLogEntry.id))]
    denied_other = (BANK, "consent_use", "denied", "grant is for another organisation", None)
    assert log == [denied_other, ("另一家银行", "consent_use", "denied", "grant is for another organisation", None),
                   denied_other, (BANK, "consent_use", "denied", "grant revoked or expired", "开立对公账户")]
    assert time.time() < ends  # the grant ended by the service's clock, not by waiting


def test_a_bank_reads_an_application_only_as_far_as_a_live_grant_covers_it(api, keys, runtime):
    from tests.materials_api.test_access_matrix import PDF

    h = {"Authorization": keys["enterprise"]}
    bank = {"Authorization": keys["bank"]}
    assert api.post("/api/v1/enterprises", json={"uscc": A, "name": "甲公司"},
                    headers={"Authorization": keys["registrar"]}).status_code == 201
    ids = {}
    for folder in ("business_licence", "lease_contract"):
        m = api.post("/api/v1/materials", headers=h, files={"file": (f"{folder}.pdf", PDF + folder.encode())},
                     data={"folder": folder})
        ids[folder] = m.json()["id"]
        assert api.post(f"/api/v1/materials/{ids[folder]}/confirm", headers=h).status_code == 200
    api.app.state.anchorer.run_once(force=True)
    app_id = api.post("/api/v1/applications", headers=h, json={"service_item": "bank_account_opening"}).json()["id"]
    app_url = f"/api/v1/applications/{app_id}"
    filled = {i["material_id"] for i in api.get(app_url, headers=h).json()["items"] if i["material_id"]}
    assert filled == set(ids.values())  # the owner reads its own

    def grant(**covers):
        r = api.post("/api/v1/consents", headers=h, json={"verifier_organisation": "org-bank", "purpose": "开立对公账户",
                                                         "expires_at": "2099-01-01T00:00:00Z", **covers})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def verify(material_id):
        return api.post(f"{app_url}/materials/{material_id}/verify", headers=bank)

    refused = api.get(app_url, headers=bank)
    assert (refused.status_code, refused.json()["code"]) == (404, "application_not_found")
    # A grant of one of the two materials: that material can be checked, the application not read.
    grant(material_types=["lease_contract"])
    assert verify(ids["lease_contract"]).status_code == 200
    assert verify(ids["business_licence"]).status_code == 404
    assert api.get(app_url, headers=bank).status_code == 404
    # Every filled material granted, the application unnamed: it may be read.
    both = grant(material_types=["business_licence", "lease_contract"])
    assert api.get(app_url, headers=bank).status_code == 200
    api.post(f"/api/v1/consents/{both}/revoke", headers=h)
    assert api.get(app_url, headers=bank).status_code == 404
    # A grant naming the application, after a revoked one: read; once it is revoked, the bank
    # that knew of it is told consent is needed (and the log says why).
    naming = grant(application_ids=[app_id])
    assert api.get(app_url, headers=bank).status_code == 200
    api.post(f"/api/v1/consents/{naming}/revoke", headers=h)
    late = api.get(app_url, headers=bank)
    assert (late.status_code, late.json()["code"]) == (403, "consent_required")
    assert late.json()["message"] == "no active grant of the enterprise lets your organisation read this"
    log = [(e["action"], e["outcome"], e["reason"], e["target"]) for e in api.get("/api/v1/access-log", headers=h).json()
           if e["organisation"] == "org-bank"]
    assert ("application_read", "denied", "the grant naming it is revoked or expired",
            f"application {app_id} (bank_account_opening)") in log
    assert ("application_verify", "denied", "no grant of the enterprise covers it",
            f"application {app_id} (bank_account_opening), material {ids['business_licence']}") in log


def _anchored(api, key: str, folder: str, content: bytes, *, confirm: bool = True) -> int:
    r = api.post("/api/v1/materials", headers={"Authorization": key}, data={"folder": folder},
                 files={"file": (f"{folder}.pdf", content)})
    assert r.status_code == 201, r.text
    if confirm:
        assert api.post(f"/api/v1/materials/{r.json()['id']}/confirm", headers={"Authorization": key}).status_code == 200
    return r.json()["id"]


def test_a_grant_covers_its_listed_materials_and_the_newest_anchored_of_its_folders_of_its_enterprise_only(
        api, keys, runtime):
    """What a bank reads under a grant: the materials it lists, and of each folder it names the
    newest *anchored* material of *this* enterprise — not an older version, not one still
    uploading or withdrawn, not another folder's, never another enterprise's of the same folder."""
    from tests.materials_api.test_access_matrix import PDF

    b_key = _a_and_b(api, keys, runtime)
    a = keys["enterprise"]
    lease_old = _anchored(api, a, "lease_contract", PDF + b"lease 1")
    lease_new = _anchored(api, a, "lease_contract", PDF + b"lease 2")
    licence = _anchored(api, a, "business_licence", PDF + b"licence")
    articles = _anchored(api, a, "articles_of_association", PDF + b"articles")
    api.app.state.anchorer.run_once(force=True)
    _anchored(api, a, "lease_contract", PDF + b"lease 3, not confirmed", confirm=False)  # newest, not anchored
    b_lease = _anchored(api, b_key, "lease_contract", PDF + b"B's lease")  # B's, newest of all by id
    api.app.state.anchorer.run_once(force=True)
    r = api.post("/api/v1/consents", headers={"Authorization": a}, json={
        "verifier_organisation": "org-bank", "purpose": "开立对公账户", "expires_at": "2099-01-01T00:00:00Z",
        "material_ids": [licence], "material_types": ["lease_contract"]})
    assert r.status_code == 201, r.text
    policy = api.app.state.access
    with runtime.sessions() as s:
        from materials_api.bank.models import ConsentGrant

        grant = s.get(ConsentGrant, r.json()["id"])
    assert [m.id for m in policy.covered_materials(grant)] == [lease_new, licence]
    assert articles not in [m.id for m in policy.covered_materials(grant)] and b_lease > lease_new
    received = api.get("/api/v1/consents/received", headers={"Authorization": keys["bank"]}).json()
    assert [[m["id"] for m in g["materials"]] for g in received] == [[lease_new, licence]]
    # The newest lease withdrawn: the one before it is what the folder offers now.
    assert api.post(f"/api/v1/materials/{lease_new}/withdraw", headers={"Authorization": a}).status_code == 200
    assert [m.id for m in policy.covered_materials(grant)] == [lease_old, licence]


def _principal_key(runtime, uscc: str) -> str:
    with runtime.sessions.begin() as s:
        return create_key(s, uscc, Role.ENTERPRISE, uscc)[1]


def _a_and_b(api, keys, runtime) -> str:
    """Enterprises A (the `enterprise` key's) and B registered; B's key."""
    for uscc, name in ((A, "甲公司"), (B, "乙公司")):
        assert api.post("/api/v1/enterprises", json={"uscc": uscc, "name": name},
                        headers={"Authorization": keys["registrar"]}).status_code == 201
    return "Bearer " + _principal_key(runtime, B)


def test_a_grant_naming_another_enterprises_application_is_refused_and_logged_there(api, keys, runtime):
    b_key = _a_and_b(api, keys, runtime)
    theirs = api.post("/api/v1/applications", headers={"Authorization": b_key},
                      json={"service_item": "bank_account_opening"}).json()["id"]
    r = api.post("/api/v1/consents", headers={"Authorization": keys["enterprise"]}, json={
        "verifier_organisation": "org-bank", "purpose": "开立对公账户", "expires_at": "2099-01-01T00:00:00Z",
        "application_ids": [theirs]})
    assert (r.status_code, r.json()["code"]) == (404, "application_not_found")
    assert api.get("/api/v1/consents", headers={"Authorization": keys["enterprise"]}).json() == []  # nothing granted
    log = [(e["organisation"], e["action"], e["outcome"], e["reason"], e["target"])
           for e in api.get("/api/v1/access-log", headers={"Authorization": b_key}).json()]
    assert ("org-enterprise", "consent_grant", "denied", "another enterprise's application",
            f"application {theirs}") in log


def test_another_enterprises_ended_grant_tells_a_bank_nothing_of_this_ones_materials(api, keys, runtime):
    """A bank holding a revoked grant of A's for a folder asks for B's material of that folder:
    "not found" (404), as for any material it may not know of — never "consent required" (403),
    which would tell it that B keeps such a material. A's own material under the ended grant is
    "consent required". And B revoking A's grant finds no such grant, logged in A's log."""
    from tests.materials_api.test_access_matrix import PDF

    b_key = _a_and_b(api, keys, runtime)
    a = keys["enterprise"]
    a_lease = _anchored(api, a, "lease_contract", PDF + b"A's lease")
    b_lease = _anchored(api, b_key, "lease_contract", PDF + b"B's lease")
    api.app.state.anchorer.run_once(force=True)
    r = api.post("/api/v1/consents", headers={"Authorization": a}, json={
        "verifier_organisation": "org-bank", "purpose": "开立对公账户", "expires_at": "2099-01-01T00:00:00Z",
        "material_types": ["lease_contract"]})
    assert r.status_code == 201, r.text
    grant = r.json()["id"]
    bank = {"Authorization": keys["bank"]}
    assert api.get(f"/api/v1/materials/{a_lease}/proof", headers=bank).status_code == 200
    assert api.get(f"/api/v1/materials/{b_lease}/proof", headers=bank).json()["code"] == "material_not_found"
    refused = api.post(f"/api/v1/consents/{grant}/revoke", headers={"Authorization": b_key})
    assert (refused.status_code, refused.json()["code"]) == (404, "grant_not_found")
    assert str(grant) in refused.json()["message"]
    assert api.post(f"/api/v1/consents/{grant}/revoke", headers={"Authorization": a}).status_code == 200
    ended = api.get(f"/api/v1/materials/{a_lease}/proof", headers=bank)
    assert (ended.status_code, ended.json()["code"]) == (403, "consent_required")
    hidden = api.get(f"/api/v1/materials/{b_lease}/proof", headers=bank)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "material_not_found")
    log = [(e["organisation"], e["action"], e["outcome"], e["reason"], e["target"])
           for e in api.get("/api/v1/access-log", headers={"Authorization": a}).json()]
    assert (B, "grant_revoke", "denied", "another enterprise's grant", f"grant {grant}") in log


def test_a_grant_naming_an_application_opens_it_before_anything_is_filled_in(api, keys):
    """An enterprise starting an account opening names the application in its grant before it has
    filed a single material: the bank may read the (empty) application — the grant names it."""
    h = {"Authorization": keys["enterprise"]}
    assert api.post("/api/v1/enterprises", json={"uscc": A, "name": "甲公司"},
                    headers={"Authorization": keys["registrar"]}).status_code == 201
    app_id = api.post("/api/v1/applications", headers=h, json={"service_item": "bank_account_opening"}).json()["id"]
    app_url = f"/api/v1/applications/{app_id}"
    assert not any(i["material_id"] for i in api.get(app_url, headers=h).json()["items"])
    assert api.get(app_url, headers={"Authorization": keys["bank"]}).status_code == 404
    r = api.post("/api/v1/consents", headers=h, json={"verifier_organisation": "org-bank", "purpose": "开立对公账户",
                                                     "expires_at": "2099-01-01T00:00:00Z", "application_ids": [app_id]})
    assert r.status_code == 201, r.text
    read = api.get(app_url, headers={"Authorization": keys["bank"]})
    assert read.status_code == 200 and read.json()["id"] == app_id


def test_an_enterprise_reads_its_whole_access_log_a_page_at_a_time_or_as_one_csv(api, keys, runtime):
    """A busy enterprise (a bank checking it daily for years) has thousands of entries: the JSON
    comes newest first, 500 to a page, the next page `?before=` the last id; the CSV is all of it."""
    from materials_api.registry.models import Enterprise

    assert api.post("/api/v1/enterprises", json={"uscc": A, "name": "甲公司"},
                    headers={"Authorization": keys["registrar"]}).status_code == 201
    with runtime.sessions() as s:
        enterprise = s.scalars(select(Enterprise).where(Enterprise.uscc == A)).one()
    bank = _principal(runtime, BANK, Role.BANK)
    policy = api.app.state.access
    for i in range(502):
        policy.log(enterprise.id, bank, "material_proof", f"material {i}", purpose="贷后检查")
    h = {"Authorization": keys["enterprise"]}
    first = api.get("/api/v1/access-log", headers=h).json()
    targets = [e["target"] for e in first if e["action"] == "material_proof"]
    assert len(first) == 500 and targets[:2] == ["material 501", "material 500"]
    assert [e["id"] for e in first] == sorted((e["id"] for e in first), reverse=True)
    rest = api.get("/api/v1/access-log", headers=h, params={"before": first[-1]["id"]}).json()
    seen = targets + [e["target"] for e in rest if e["action"] == "material_proof"]
    assert seen == [f"material {i}" for i in range(501, -1, -1)]  # every entry once, none skipped
    assert len(api.get("/api/v1/access-log", headers=h, params={"limit": 3}).json()) == 3
    for bad in ({"limit": 0}, {"limit": 501}, {"before": 0}, {"before": "x"}, {"before": 2**63}):
        r = api.get("/api/v1/access-log", headers=h, params=bad)
        assert r.status_code == 422 and "code" in r.json(), bad
    # Each entry keeps the key that read (which of the bank's keys: revocable on its own).
    assert {e.actor_key_id for e in policy.entries(enterprise, limit=None) if e.action == "material_proof"} == {bank.key_id}
    policy.log(enterprise.id, None, "scan_view", "public view")
    anonymous = policy.entries(enterprise, limit=1)[0]
    assert (anonymous.actor_key_id, anonymous.organisation, anonymous.role) == (None, "(anonymous)", "public")
    # Long words are cut to the columns' 200 characters (a hostile purpose cannot fail the write).
    policy.log(enterprise.id, bank, "consent_use", "长" * 300, purpose="贷" * 300, reason="拒" * 300, outcome="denied")
    long = policy.entries(enterprise, limit=1)[0]
    assert (long.target, long.purpose, long.reason) == ("长" * 200, "贷" * 200, "拒" * 200)
    csv_lines = api.get("/api/v1/access-log", headers=h, params={"format": "csv"}).text.strip().splitlines()
    assert csv_lines[0].lstrip("\ufeff").startswith("at,organisation") and sum("material_proof" in line for line in csv_lines) == 502


def test_a_grant_must_name_only_the_enterprises_own_finished_materials(api, keys, runtime):
    """Every id a grant lists is checked, not only the first: one of B's materials hidden after one
    of A's own is refused (and logged in B's log), and so is A's own material whose upload never
    finished (its row written ahead, its bytes not stored: a crash half-way)."""
    from sqlalchemy import update

    from materials_api.bank.models import Material
    from tests.materials_api.test_access_matrix import PDF

    b_key = _a_and_b(api, keys, runtime)
    a = keys["enterprise"]
    own = _anchored(api, a, "lease_contract", PDF + b"A's lease")
    half = _anchored(api, a, "business_licence", PDF + b"A's licence, upload cut off")
    theirs = _anchored(api, b_key, "lease_contract", PDF + b"B's lease")
    with runtime.sessions.begin() as s:
        s.execute(update(Material).where(Material.id == half).values(state="storing"))

    def grant(ids):
        return api.post("/api/v1/consents", headers={"Authorization": a}, json={
            "verifier_organisation": "org-bank", "purpose": "开立对公账户", "expires_at": "2099-01-01T00:00:00Z",
            "material_ids": ids})

    for ids, refused in (([own, theirs], theirs), ([own, half], half)):
        r = grant(ids)
        assert (r.status_code, r.json()["code"], r.json()["message"]) == (
            404, "material_not_found", f"no material {refused} of this enterprise"), ids
    assert api.get("/api/v1/consents", headers={"Authorization": a}).json() == []  # nothing granted
    log = [(e["action"], e["outcome"], e["reason"], e["target"])
           for e in api.get("/api/v1/access-log", headers={"Authorization": b_key}).json()]
    assert ("consent_grant", "denied", "another enterprise's material", f"material {theirs}") in log
    assert grant([own]).status_code == 201


def test_an_enterprise_key_naming_another_enterprise_is_refused_and_the_attempt_logged_there(api, keys, runtime):
    """USCCs are public, so B's key may learn that A exists (403, not 404); A learns from its own
    log that B's key tried, and why it was refused."""
    b_key = _a_and_b(api, keys, runtime)
    r = api.get(f"/api/v1/materials?uscc={A.lower()}", headers={"Authorization": b_key})
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        403, "not_your_enterprise", "an enterprise key acts only for its own USCC")
    log = [(e["organisation"], e["action"], e["outcome"], e["reason"], e["target"])
           for e in api.get("/api/v1/access-log", headers={"Authorization": keys["enterprise"]}).json()]
    assert log == [(B, "materials_list", "denied", "an enterprise key acts only for its own enterprise",
                    f"enterprise {A}")]
