"""Consent holds on every path (申请人授权用): a matrix over the route table.

For every /api/v1 route that reaches enterprises' objects (its handler takes the access policy,
the consent service or the scan views — found by type — or it takes an object id or a USCC), enterprise A's object is called by
enterprise B, by a bank with no grant, by a bank with a grant for something else, by the holder
of an expired grant that named the object, and anonymously. Each gets the refusal it should; each
refusal decided on a non-public object (not the role check, which never looks at the object)
leaves exactly one "denied" entry in A's access log. A new route without an entry fails here,
unless it is listed as reaching no enterprise object, with the reason.
"""

from __future__ import annotations

import io
import typing
from datetime import datetime, timedelta, timezone
from typing import Annotated

import pytest
from fastapi.routing import APIRoute
from PIL import Image
from pydantic import BaseModel
from sqlalchemy import select

from materials_api.bank.access import AccessPolicy
from materials_api.bank.consent import ConsentService
from materials_api.bank.models import AccessLogEntry
from materials_api.codes.views import ScanViews
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.main import ROUTERS
from materials_api.registry.models import Enterprise
from tests.conftest import grant_writers

USCC_A = "91350100M000100Y43"  # the `keys` fixture's enterprise key acts for A
USCC_B = "91110108MA01ABCD1E"
PDF = b"%PDF-1.7\n" + b"material " * 300
CALLERS = ("enterprise_b", "bank_none", "bank_other", "bank_expired", "anonymous")
ROLE_OF = {"enterprise_b": Role.ENTERPRISE, "bank_none": Role.BANK, "bank_other": Role.BANK,
           "bank_expired": Role.BANK, "anonymous": None}
ORG_OF = {"enterprise_b": "乙公司", "bank_none": "未授权银行", "bank_other": "另有授权银行", "bank_expired": "过期授权银行",
          "anonymous": "(anonymous)"}


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def _takes_id(annotation) -> bool:
    """Whether a JSON body (a model, or a union with one) names a USCC or an object id, at any depth."""
    models = [t for t in getattr(annotation, "__args__", (annotation,)) if isinstance(t, type) and issubclass(t, BaseModel)]
    return any(_model_takes_id(m) for m in models)


def _model_takes_id(model) -> bool:
    for name, field in model.model_fields.items():
        if name == "uscc" or name.endswith("_id") or name.endswith("_ids"):
            return True
        if _takes_id(field.annotation):
            return True
    return False


def id_taking_routes() -> set[str]:
    found = set()
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1"):
                continue
            params = [p.name for p in route.dependant.path_params + route.dependant.query_params]
            bodies = [p.field_info.annotation for p in route.dependant.body_params]
            # Multipart routes parse their form themselves; their schema names the parts.
            form = ((route.openapi_extra or {}).get("requestBody", {}).get("content", {})
                    .get("multipart/form-data", {}).get("schema", {}).get("properties", {}))
            params += list(form)
            if any(p == "uscc" or p.endswith("_id") for p in params) or any(_takes_id(b) for b in bodies):
                found |= {f"{m} {route.path}" for m in route.methods}
    return found


def _admitted(route: APIRoute) -> set:
    def walk(dependant):
        for dep in dependant.dependencies:
            roles = getattr(dep.call, "admitted_roles", None)
            if roles is not None:
                yield from roles
            yield from walk(dep)
    return set(walk(route.dependant))


def route_table() -> dict[str, APIRoute]:
    return {f"{m} {r.path}": r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)
            for m in r.methods}


@pytest.fixture
def world(api, keys, runtime):
    """Enterprise A with materials, an application, grants, records and an inspection; enterprise B;
    banks with no grant, a grant for something else, and an expired grant naming A's objects."""
    h_reg = {"Authorization": keys["registrar"]}
    for uscc, name in ((USCC_A, "甲公司"), (USCC_B, "乙公司")):
        assert api.post("/api/v1/enterprises", json={"uscc": uscc, "name": name}, headers=h_reg).status_code == 201
    callers = {"anonymous": {}}
    with runtime.sessions.begin() as s:
        for who in CALLERS[:-1]:
            role = ROLE_OF[who]
            _, plain = create_key(s, ORG_OF[who], role, USCC_B if role is Role.ENTERPRISE else None)
            callers[who] = {"Authorization": f"Bearer {plain}"}
        for name, org, role, scope in (("credit", "信用办", Role.ISSUER, "credit.grade"),
                                       ("inspector", "执法检查员", Role.INSPECTOR, None)):
            _, plain = create_key(s, org, role, scope)
            keys[name] = f"Bearer {plain}"
    grant_writers(runtime)
    h = {"Authorization": keys["enterprise"]}
    ids = {}
    for folder in ("lease_contract", "identity_document", "financial_statement", "business_licence"):
        m = api.post("/api/v1/materials", headers=h, files={"file": (f"{folder}.pdf", PDF + folder.encode())},
                     data={"folder": folder})
        assert m.status_code == 201, m.text
        ids[folder] = m.json()["id"]
        assert api.post(f"/api/v1/materials/{ids[folder]}/confirm", headers=h).status_code == 200
    api.app.state.anchorer.run_once(force=True)
    app = api.post("/api/v1/applications", headers=h, json={"service_item": "bank_account_opening"})
    assert app.status_code == 201
    soon = datetime.fromtimestamp(runtime.clock.time() + 60, timezone.utc).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    grants = {
        "other": api.post("/api/v1/consents", headers=h, json={
            "verifier_organisation": ORG_OF["bank_other"], "material_ids": [ids["financial_statement"]],
            "purpose": "贷款审批", "expires_at": later}),
        "expired": api.post("/api/v1/consents", headers=h, json={
            "verifier_organisation": ORG_OF["bank_expired"], "material_ids": [ids["lease_contract"]],
            "application_ids": [app.json()["id"]], "purpose": "开立对公账户", "expires_at": soon}),
    }
    assert all(g.status_code == 201 for g in grants.values()), [g.text for g in grants.values()]
    credit = api.post("/api/v1/records", headers={"Authorization": keys["credit"]},
                      json={"uscc": USCC_A, "kind": "credit_grade", "data": {"grade": "B"}})
    assert credit.status_code == 201, credit.text
    inspection = api.post("/api/v1/inspections", headers={"Authorization": keys["inspector"]},
                          data={"uscc": USCC_A, "result": "passed", "findings": "现场检查未发现问题"},
                          files={"file": ("现场.jpg", _photo(), "image/jpeg")})
    assert inspection.status_code == 201, inspection.text
    code = api.post("/api/v1/codes/dynamic", headers=h, json={"ttl_seconds": 3600})
    assert code.status_code == 201, code.text
    runtime.clock.advance(61)  # the "expired" grant lapses
    return {"callers": callers, "material": ids["lease_contract"], "application": app.json()["id"],
            "code": code.json()["code"],
            "grant": grants["other"].json()["id"], "credit": credit.json()["id"],
            "inspection": inspection.json()["id"]}


# Each entry: how to call the route on A's object, and what an admitted caller gets:
# (status, reason code, logged in A's access log). Callers whose role the route does not admit
# are refused by the role check (401 anonymous, 403 role_forbidden) before any object is read.
NOT_FOUND_LOGGED = {"status": 404, "logged": True}


def hidden(code: str, *callers: str) -> dict:
    """Refused as "not found", like an id never used, and logged; the expired grant's holder
    already holds the reference and is told consent is required."""
    out = {c: {**NOT_FOUND_LOGGED, "code": code} for c in callers}
    if "bank_expired" in callers:
        out["bank_expired"] = {"status": 403, "code": "consent_required", "logged": True}
    return out


ALL_BANKS = ("bank_none", "bank_other", "bank_expired")
MATRIX = {
    "DELETE /api/v1/keys/{key_id}": (lambda w: ("DELETE", "/api/v1/keys/1", {}), {}),
    "POST /api/v1/enterprises": (
        lambda w: ("POST", "/api/v1/enterprises", {"json": {"uscc": USCC_A, "name": "甲公司"}}), {}),
    "GET /api/v1/enterprises/{uscc}": (
        lambda w: ("GET", f"/api/v1/enterprises/{USCC_A}", {}),
        # Name and status are public (公示): every signed-in caller reads them, nothing is logged.
        {c: {"status": 200, "logged": False} for c in CALLERS}),
    "GET /api/v1/enterprises/{uscc}/public-records": (
        lambda w: ("GET", f"/api/v1/enterprises/{USCC_A}/public-records", {}),
        # 公示 records, the same file for everyone (non-public kinds are not in it): nothing logged.
        {c: {"status": 200, "logged": False} for c in CALLERS}),
    "POST /api/v1/enterprises/{uscc}/status": (
        lambda w: ("POST", f"/api/v1/enterprises/{USCC_A}/status", {"json": {"status": "revoked"}}), {}),
    "GET /api/v1/enterprises/{uscc}/code.{fmt}": (
        lambda w: ("GET", f"/api/v1/enterprises/{USCC_A}/code.svg", {}),
        # The static code is printed on the public licence: refused, but it is not private data.
        {"enterprise_b": {"status": 403, "code": "not_your_enterprise", "logged": False}}),
    "GET /api/v1/materials": (
        lambda w: ("GET", f"/api/v1/materials?uscc={USCC_A}", {}),
        {"enterprise_b": {"status": 403, "code": "not_your_enterprise", "logged": True}}),
    "POST /api/v1/materials": (
        lambda w: ("POST", "/api/v1/materials", {"data": {"uscc": USCC_A}, "files": {"file": ("x.pdf", PDF)}}),
        {"enterprise_b": {"status": 403, "code": "not_your_enterprise", "logged": True}}),
    "GET /api/v1/materials/{material_id}": (
        lambda w: ("GET", f"/api/v1/materials/{w['material']}", {}),
        hidden("material_not_found", "enterprise_b")),
    "POST /api/v1/materials/{material_id}/confirm": (
        lambda w: ("POST", f"/api/v1/materials/{w['material']}/confirm", {}),
        hidden("material_not_found", "enterprise_b")),
    "POST /api/v1/materials/{material_id}/versions": (
        lambda w: ("POST", f"/api/v1/materials/{w['material']}/versions", {"files": {"file": ("y.pdf", PDF + b"2")}}),
        hidden("material_not_found", "enterprise_b")),
    "POST /api/v1/materials/{material_id}/withdraw": (
        lambda w: ("POST", f"/api/v1/materials/{w['material']}/withdraw", {}),
        hidden("material_not_found", "enterprise_b")),
    "POST /api/v1/materials/{material_id}/revoke": (
        lambda w: ("POST", f"/api/v1/materials/{w['material']}/revoke", {"json": {"reason": "伪造"}}), {}),
    "GET /api/v1/materials/{material_id}/content": (
        lambda w: ("GET", f"/api/v1/materials/{w['material']}/content", {}),
        hidden("material_not_found", "enterprise_b", *ALL_BANKS)),
    "GET /api/v1/materials/{material_id}/proof": (
        lambda w: ("GET", f"/api/v1/materials/{w['material']}/proof", {}),
        hidden("material_not_found", "enterprise_b", *ALL_BANKS)),
    "GET /api/v1/materials/{material_id}/reuses": (
        lambda w: ("GET", f"/api/v1/materials/{w['material']}/reuses", {}),
        hidden("material_not_found", "enterprise_b")),
    "GET /api/v1/applications": (
        lambda w: ("GET", f"/api/v1/applications?uscc={USCC_A}", {}),
        {"enterprise_b": {"status": 403, "code": "not_your_enterprise", "logged": True}}),
    "GET /api/v1/applications/{application_id}": (
        lambda w: ("GET", f"/api/v1/applications/{w['application']}", {}),
        hidden("application_not_found", "enterprise_b", *ALL_BANKS)),
    "POST /api/v1/applications/{application_id}/materials/{material_id}/verify": (
        lambda w: ("POST", f"/api/v1/applications/{w['application']}/materials/{w['material']}/verify", {}),
        hidden("application_not_found", *ALL_BANKS)),
    "POST /api/v1/records": (
        # A bank records a receipt of what it checked: a write of its own, not a read of A's data.
        lambda w: ("POST", "/api/v1/records", {"json": {"uscc": USCC_A, "kind": "verification_receipt",
                                                        "data": {"purpose": "开户核验"}}}),
        {c: {"status": 201, "logged": False} for c in ALL_BANKS}),
    "POST /api/v1/records/{record_id}/status": (
        # Banks see credit grades in their view, so "not yours" is no secret; the attempt is logged.
        lambda w: ("POST", f"/api/v1/records/{w['credit']}/status", {"json": {"status": "revoked"}}),
        {c: {"status": 403, "code": "category_forbidden", "logged": True}
         for c in ALL_BANKS}),
    "GET /api/v1/records": (
        lambda w: ("GET", f"/api/v1/records?uscc={USCC_A}", {}),
        {"enterprise_b": {"status": 403, "code": "not_your_enterprise", "logged": True}}),
    "GET /api/v1/records/{record_id}/proof": (
        lambda w: ("GET", f"/api/v1/records/{w['credit']}/proof", {}),
        {"enterprise_b": {**NOT_FOUND_LOGGED, "code": "record_not_found"},
         "anonymous": {**NOT_FOUND_LOGGED, "code": "record_not_found"},
         # A bank's view shows credit grades: the read is allowed, and logged.
         **{c: {"status": 200, "logged": "allowed"} for c in ALL_BANKS}}),
    "POST /api/v1/consents": (
        lambda w: ("POST", "/api/v1/consents", {"json": {
            "verifier_organisation": "乙的银行", "material_ids": [w["material"]], "purpose": "x",
            "expires_at": "2099-01-01T00:00:00Z"}}),
        hidden("material_not_found", "enterprise_b")),
    "GET /api/v1/consents/received": (
        # A bank's own grants only: an expired one and another bank's are not shown (nothing of A
        # read, nothing logged); a bank holding an active grant of A reads its list, logged in A's log.
        lambda w: ("GET", "/api/v1/consents/received", {}),
        {"bank_none": {"status": 200, "logged": False}, "bank_expired": {"status": 200, "logged": False},
         "bank_other": {"status": 200, "logged": "allowed"}}),
    "POST /api/v1/consents/{grant_id}/revoke": (
        lambda w: ("POST", f"/api/v1/consents/{w['grant']}/revoke", {}),
        {"enterprise_b": {**NOT_FOUND_LOGGED, "code": "grant_not_found"}}),
    "POST /api/v1/codes/dynamic": (
        lambda w: ("POST", "/api/v1/codes/dynamic", {"json": {"scope": {"grant_id": w["grant"]}}}),
        {"enterprise_b": {**NOT_FOUND_LOGGED, "code": "grant_not_found"}}),
    "POST /api/v1/inspections": (
        lambda w: ("POST", "/api/v1/inspections", {"data": {"uscc": USCC_A, "result": "passed", "findings": "x"},
                                                   "files": {"file": ("p.jpg", _photo(), "image/jpeg")}}), {}),
    # Routes that reach enterprises' objects only as the caller's own enterprise: B gets B's.
    **{f"{method} /api/v1/{path}": ((lambda m, p: lambda w: (m, f"/api/v1/{p}", kwargs))(method, path),
                                    {"enterprise_b": {"status": status, "logged": False}})
       for method, path, status, kwargs in (("GET", "access-log", 200, {}), ("GET", "consents", 200, {}),
                                            ("GET", "codes/static/status", 200, {}),
                                            ("POST", "applications", 201,
                                             {"json": {"service_item": "bank_account_opening"}}))},
    # A's code scanned by anyone: the verdict is public; a bank's view (it shows credit grades)
    # is a read of A's data, and logged as one.
    "POST /api/v1/verify/code": (
        lambda w: ("POST", "/api/v1/verify/code", {"json": {"code": w["code"]}}),
        {"enterprise_b": {"status": 200, "logged": False}, "anonymous": {"status": 200, "logged": False},
         **{c: {"status": 200, "logged": "allowed"} for c in ALL_BANKS}}),
    "GET /api/v1/inspections/{record_id}/photo": (
        lambda w: ("GET", f"/api/v1/inspections/{w['inspection']}/photo", {}),
        {"enterprise_b": {**NOT_FOUND_LOGGED, "code": "record_not_found"}}),
}


# Every other /api/v1 route, and why it reaches no enterprise's non-public object. A route whose
# handler takes an enterprise-object gate (below) or names an object id can never be listed here.
REACHES_NO_ENTERPRISE_OBJECT = {
    "GET /api/v1/codes/keys/{kid}/enterprises": "governor only: which enterprises a static-code key signed for",
    "GET /api/v1/codes/keyset": "public: the registrar keys, signed by the governor",
    "GET /api/v1/codes/trust-list": "public: the deployments verifiers accept, signed by the governor",
    "GET /api/v1/enterprises": "registrar and governor: the public register (names and USCCs)",
    "GET /api/v1/keys": "governor only: the service's API keys (hashes never shown)",
    "POST /api/v1/keys": "governor only: makes an API key",
    "GET /api/v1/material-types": "public catalogue",
    "GET /api/v1/verifiers": "enterprises: the names of the registered banks, to grant consent to",
    "GET /api/v1/district": "governor and registrar: counts over the whole district (scans, backlog, standing)",
    "GET /api/v1/record-kinds": "public catalogue",
    "GET /api/v1/service-items": "public catalogue",
    "POST /api/v1/codes/keys/rotate": "governor only: the static-code key",
    "POST /api/v1/codes/keys/{kid}/compromise": "governor only: the static-code key",
    "POST /api/v1/records/batch": "authorities write their own category's records (checked in "
                                  "tests/attacks/test_cross_organisation.py); nothing is read back",
    "POST /api/v1/verify/material": "anyone: checks bytes the caller holds against a bundle it holds",
    "POST /api/v1/verify/materials": "anyone: the same, many at once",
}

# The types through which a handler reaches enterprises' objects: a route taking one of them
# must have a matrix entry, whatever its parameters are called.
ENTERPRISE_OBJECT_GATES = (AccessPolicy, ConsentService, ScanViews)


def gated_routes() -> set[str]:
    found = set()
    for key, route in route_table().items():
        hints = typing.get_type_hints(route.endpoint, include_extras=True).values()
        types = [typing.get_args(h)[0] if typing.get_origin(h) is Annotated else h for h in hints]
        if any(isinstance(t, type) and issubclass(t, ENTERPRISE_OBJECT_GATES) for t in types):
            found.add(key)
    return found


def test_every_route_has_a_matrix_entry_or_says_why_it_reaches_no_enterprise_object():
    api_routes = {k for k in route_table() if " /api/v1/" in k}
    required = (id_taking_routes() | gated_routes()) & api_routes
    assert "GET /api/v1/access-log" in required and "POST /api/v1/applications" in required  # by type
    missing = sorted(required - set(MATRIX))
    assert not missing, f"routes reaching enterprises' objects without an access-matrix entry: {missing}"
    wrongly_excused = sorted(required & set(REACHES_NO_ENTERPRISE_OBJECT))
    assert not wrongly_excused, f"routes that reach enterprises' objects listed as reaching none: {wrongly_excused}"
    unclassified = sorted(api_routes - set(MATRIX) - set(REACHES_NO_ENTERPRISE_OBJECT))
    assert not unclassified, f"routes neither in the matrix nor said to reach no enterprise object: {unclassified}"
    stale = sorted((set(MATRIX) | set(REACHES_NO_ENTERPRISE_OBJECT)) - set(route_table()))
    assert not stale, f"entries for routes that no longer exist: {stale}"


def _log_of_a(runtime) -> list[tuple[str, str]]:
    with runtime.sessions() as s:
        return [(e.organisation, e.outcome) for e in s.scalars(
            select(AccessLogEntry).join_from(AccessLogEntry, Enterprise).where(Enterprise.uscc == USCC_A)
            .order_by(AccessLogEntry.id))]


def test_every_id_taking_route_refuses_other_callers_and_logs_each_refusal(api, runtime, world):
    routes = route_table()
    failures = []
    for key, (build, expected) in MATRIX.items():
        admitted = _admitted(routes[key])
        for caller in CALLERS:
            method, url, kwargs = build(world)
            role = ROLE_OF[caller]
            if caller == "anonymous" and "anonymous" not in admitted:
                want = {"status": 401, "code": "auth_missing", "logged": False}
            elif role is not None and role not in admitted:
                want = {"status": 403, "code": "role_forbidden", "logged": False}
            else:
                want = expected.get(caller)
                if want is None:
                    failures.append(f"{key} admits {caller} but its matrix entry says nothing about it")
                    continue
            before = _log_of_a(runtime)
            r = api.request(method, url, headers=world["callers"][caller], **kwargs)
            after = _log_of_a(runtime)
            got_code = r.json().get("code") if r.headers.get("content-type", "").startswith("application/json") \
                and r.status_code >= 400 else None
            if r.status_code != want["status"] or ("code" in want and got_code != want["code"]):
                failures.append(f"{key} as {caller}: {r.status_code} {got_code}, wanted {want['status']} "
                                f"{want.get('code')}")
                continue
            new = after[len(before):]
            if want["logged"] is True:
                wanted_log = [(ORG_OF[caller], "denied")]
            elif want["logged"] == "allowed":
                wanted_log = [(ORG_OF[caller], "allowed")]
            else:
                wanted_log = []
            if new != wanted_log:
                failures.append(f"{key} as {caller}: A's log gained {new}, wanted {wanted_log}")
    assert not failures, "\n".join(failures)


def test_bank_reads_an_application_only_under_a_grant_and_every_try_is_logged(api, keys, runtime, world):
    """The three calls of the report: read an application, verify (reuse) one of its materials,
    read A's access log. Ungranted: refused and logged as refusals; granted: allowed and logged."""
    h_a = {"Authorization": keys["enterprise"]}
    bank = world["callers"]["bank_none"]
    app_url = f"/api/v1/applications/{world['application']}"
    verify_url = f"{app_url}/materials/{world['material']}/verify"
    assert api.get(app_url, headers=bank).status_code == 404
    assert api.post(verify_url, headers=bank).status_code == 404
    assert api.get(f"/api/v1/materials/{world['material']}/reuses", headers=h_a).json() == []
    log = api.get("/api/v1/access-log", headers=h_a).json()
    mine = [(e["action"], e["outcome"]) for e in log if e["organisation"] == ORG_OF["bank_none"]]
    assert mine == [("application_verify", "denied"), ("application_read", "denied")]

    grant = api.post("/api/v1/consents", headers=h_a, json={
        "verifier_organisation": ORG_OF["bank_none"], "application_ids": [world["application"]],
        "purpose": "开立对公账户", "expires_at": "2099-01-01T00:00:00Z"})
    assert grant.status_code == 201, grant.text
    read = api.get(app_url, headers=bank)
    assert read.status_code == 200 and read.json()["service_item"] == "bank_account_opening"
    checked = api.post(verify_url, headers=bank)
    assert checked.status_code == 200 and checked.json()["verdict"]["status"] == "VALID"
    assert checked.json()["verifier_org"] == ORG_OF["bank_none"]
    # The grant on the application covers the materials filled into it: the bank may download them.
    assert api.get(f"/api/v1/materials/{world['material']}/content", headers=bank).content.startswith(b"%PDF")
    log = api.get("/api/v1/access-log", headers=h_a).json()
    mine = [(e["action"], e["outcome"], e["purpose"]) for e in log if e["organisation"] == ORG_OF["bank_none"]]
    assert mine[:3] == [("material_download", "allowed", "开立对公账户"), ("application_verify", "allowed", "开立对公账户"),
                        ("application_read", "allowed", "开立对公账户")]
    # Revoked: the bank now holds the reference, so the refusal says consent is required.
    assert api.post(f"/api/v1/consents/{grant.json()['id']}/revoke", headers=h_a).status_code == 200
    again = api.get(app_url, headers=bank)
    assert again.status_code == 403 and again.json()["code"] == "consent_required"
    # The access log is the enterprise's own: a bank cannot read it.
    assert api.get("/api/v1/access-log", headers=bank).status_code == 403


def test_clerk_reads_at_the_window_are_logged(api, keys, world):
    clerk = {"Authorization": keys["clerk"]}
    h_a = {"Authorization": keys["enterprise"]}
    assert api.get(f"/api/v1/applications/{world['application']}", headers=clerk).status_code == 200
    assert api.get(f"/api/v1/materials?uscc={USCC_A}", headers=clerk).status_code == 200
    assert api.get(f"/api/v1/materials/{world['material']}/content", headers=clerk).status_code == 200
    log = api.get("/api/v1/access-log", headers=h_a).json()
    clerk_rows = [(e["action"], e["outcome"], e["purpose"]) for e in log if e["role"] == "clerk"]
    assert clerk_rows[:3] == [("material_download", "allowed", "窗口代办"), ("materials_list", "allowed", "窗口代办"),
                              ("application_read", "allowed", "窗口代办")]


def test_unknown_and_foreign_ids_get_the_same_answer(api, world):
    """Sequential ids cannot be walked: an id never used and another enterprise's id are refused alike."""
    b = world["callers"]["enterprise_b"]
    for template in ("/api/v1/materials/{}", "/api/v1/applications/{}"):
        foreign = api.get(template.format(world["material"] if "materials" in template else world["application"]),
                          headers=b)
        unknown = api.get(template.format(10_000_000), headers=b)
        assert (foreign.status_code, foreign.json()["code"]) == (unknown.status_code, unknown.json()["code"]) == \
            (404, foreign.json()["code"])
        assert foreign.json()["message"].split()[:2] == unknown.json()["message"].split()[:2]
