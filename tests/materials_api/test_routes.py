"""Every API route declares the roles it admits; keys are created only by the governor."""

from fastapi.routing import APIRoute

from materials_api.main import ROUTERS


def _admitted(dependant):
    found = []
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "admitted_roles", None)
        if roles is not None:
            found.append(roles)
        found += _admitted(dep)
    return found


def test_every_api_route_declares_its_roles():
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")]
    assert routes
    for route in routes:
        assert _admitted(route.dependant), f"{route.methods} {route.path} declares no roles"


def test_governor_creates_and_revokes_keys(api, keys):
    h = {"Authorization": keys["governor"]}
    r = api.post("/api/v1/keys", json={"organisation": "工商银行杨浦支行", "role": "bank"}, headers=h)
    assert r.status_code == 201
    new_key = r.json()["key"]
    listed = api.get("/api/v1/keys", headers=h).json()
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert api.get("/api/v1/enterprises/91350100M000100Y43", headers={"Authorization": f"Bearer {new_key}"}).status_code == 404
    assert api.delete(f"/api/v1/keys/{r.json()['id']}", headers=h).status_code == 204
    assert api.get("/api/v1/enterprises/91350100M000100Y43", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401


def test_key_creation_refusals(api, keys):
    h = {"Authorization": keys["governor"]}
    assert api.post("/api/v1/keys", json={"organisation": "x", "role": "issuer"}, headers=h).json()["code"] == "key_scope"
    assert api.post("/api/v1/keys", json={"organisation": "x", "role": "enterprise", "scope": "bad"},
                    headers=h).status_code == 422
    assert api.post("/api/v1/keys", json={"organisation": "x", "role": "king"}, headers=h).status_code == 422
    assert api.post("/api/v1/keys", json={"organisation": "x", "role": "bank"},
                    headers={"Authorization": keys["registrar"]}).status_code == 403
    assert api.delete("/api/v1/keys/9999", headers=h).json()["code"] == "key_not_found"
    # PostgreSQL refuses NUL in text (the fuzzer found a 500 here): a 422 with its reason.
    nul = api.post("/api/v1/keys", json={"organisation": "银行\x00", "role": "bank"}, headers=h)
    if api.app.state.runtime.engine.dialect.name == "postgresql":
        assert nul.status_code == 422 and nul.json()["code"] == "invalid_text"
    else:
        assert nul.status_code == 201


def test_health_reports_each_part(api):
    r = api.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["chain"]["ok"] and body["database"]["ok"] and body["storage"]["ok"]


def test_the_api_reference_and_its_schema_are_served(api):
    schema = api.get("/openapi.json")
    assert schema.status_code == 200 and "/api/v1/materials/{material_id}/confirm" in schema.json()["paths"]
    for r in (api.get("/docs"), api.get("/redoc"), api.get("/docs/oauth2-redirect")):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.url
        assert "content-security-policy" in r.headers and r.headers["x-content-type-options"] == "nosniff"


def test_the_catalogues_are_public(api):
    folders = {f["code"]: f["name"] for f in api.get("/api/v1/material-types").json()}
    assert folders["business_licence"] == "营业执照副本"
    items = {i["code"]: i for i in api.get("/api/v1/service-items").json()}
    opening = items["bank_account_opening"]
    assert opening["name"] == "企业开立对公账户"
    assert {"folder": "business_licence", "folder_name": "营业执照副本"} in opening["requires"]


def test_assets_are_served_by_name_only(api):
    script = api.get("/assets/scan.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    for name in ("nothing.js", "..%2Fmain.py", "app.css%00.js"):
        r = api.get(f"/assets/{name}")
        assert r.status_code == 404 and r.json()["code"] in ("asset_not_found", "not_found"), name
