"""Attack the edges a stranger reaches before any check of meaning (issue 26, items 7-9): huge
bodies, floods of anonymous verification and sign-in, and stalling the event loop that answers
everyone."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi.testclient import TestClient

from materials_api.identity.models import Role
from materials_api.main import create_app
from tests.attacks.conftest import keys_for

MiB = 1024 * 1024


def test_bodies_over_their_cap_are_refused_before_they_are_read(service):
    api, runtime = service
    huge = b'{"sha256": "' + b"0" * (2 * MiB) + b'"}'
    r = api.post("/api/v1/verify/material", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536
    r = api.post("/api/v1/verify/material", content=chunked(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    # A batch call has its own, larger cap; past it, the same refusal.
    keys = keys_for(runtime)
    r = api.post("/api/v1/records/batch", content=b" " * (2 * MiB) + b'{"changes": []}',
                 headers={"Content-Type": "application/json", **keys["registrar"]})
    assert r.status_code != 413
    r = api.post("/api/v1/verify/materials", content=b" " * (runtime.settings.max_batch_body_bytes + 1),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    # An anonymous file sent only to be hashed: its own cap, not the 512 MiB of deposits.
    runtime.settings.max_verify_upload_bytes = MiB
    r = api.post("/api/v1/verify/material", files={"file": ("x.pdf", b"%PDF-" + b"0" * (2 * MiB), "application/pdf")},
                 data={"bundle": "{}"})
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"

    # Multipart streams only to the upload calls themselves; sent to any other call (a prefix of
    # an upload path, another method) it is a body like any other, refused before it is read.
    big_form = {"file": ("x.pdf", b"%PDF-" + b"0" * (2 * MiB), "application/pdf")}
    for method, path in [("POST", "/api/v1/materials/1/confirm"), ("POST", "/api/v1/materialsX"),
                         ("PUT", "/api/v1/materials"),
                         ("POST", "/api/v1/inspections/1/extra")]:
        r = api.request(method, path, files=big_form, headers=keys["registrar"])
        assert r.status_code == 413 and r.json()["code"] == "too_large", (method, path, r.status_code)


def test_anonymous_verification_and_sign_in_are_limited_per_address(service):
    _, runtime = service
    keys = keys_for(runtime)
    runtime.settings.rate_limit_verify_per_minute = 5
    runtime.settings.rate_limit_sign_in_per_minute = 3
    runtime.settings.trusted_proxies = ["testclient"]  # the test client stands for the site's proxy
    with TestClient(create_app(runtime, reconcile=False)) as api:
        code = {"code": "https://qiyema.example/V/AAAA"}
        answers = [api.post("/api/v1/verify/code", json=code).status_code for _ in range(6)]
        assert 429 not in answers[:5] and answers[5] == 429
        r = api.post("/api/v1/verify/code", json=code)
        assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert api.get("/V/AAAA").status_code == 429  # the pages too
        # Another address, and a caller with its key, are not held back by this one.
        assert api.post("/api/v1/verify/code", json=code, headers={"X-Forwarded-For": "198.51.100.7"}).status_code != 429
        assert api.post("/api/v1/verify/code", json=code, headers=keys["bank"]).status_code != 429
        logins = [api.post("/login", data={"username": "x.y.z", "password": "wrong-password-1"},
                           follow_redirects=False).status_code for _ in range(4)]
        assert logins[:3] == [401, 401, 401] and logins[3] == 429


def test_sign_ins_do_not_stall_the_event_loop(service):
    """Password hashing (argon2id, 64 MiB) runs beside the loop, a few at a time: a request that
    needs no hashing is answered while sign-ins are being checked."""
    _, runtime = service
    runtime.settings.rate_limit_sign_in_per_minute = 0
    app = create_app(runtime, reconcile=False)
    app.state.accounts.create_user("杨浦区行政服务中心", "clerk01", "李四", Role.CLERK, password="a-long-password-9")

    async def scenario():
        done: list[str] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            async def login(i):
                await client.post("/login", data={"username": "clerk01", "password": f"wrong-password-{i}"},
                                  headers={"Origin": "http://127.0.0.1:8000"})
                done.append(f"login{i}")

            async def light():
                await asyncio.sleep(0.05)  # the sign-ins are hashing by now
                started = time.perf_counter()
                r = await client.get("/api/v1/record-kinds")
                assert r.status_code == 200
                done.append("light")
                return time.perf_counter() - started

            results = await asyncio.gather(*(login(i) for i in range(6)), light())
            return done, results[-1]

    done, _ = asyncio.run(scenario())
    assert done[0] == "light", done  # answered before any sign-in finished hashing
