"""What the operations team watches: /metrics in Prometheus format (request latency per route,
verdicts, outbox backlog, anchoring, chain head age, login failures), a request id on every
response and in every log line, JSON logs."""

import json
import logging
import re

from prometheus_client.parser import text_string_to_metric_families

from materials_api.platform.metrics import JsonFormatter, request_id
from tests.materials_api.test_materials import bank, upload  # noqa: F401 - the fixture and helper


def scrape(api, keys) -> dict:
    r = api.get("/metrics", headers={"Authorization": keys["scraper"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_the_scrape_key_and_count_requests_verdicts_and_backlog(bank, keys, runtime):
    assert bank.get("/metrics").status_code == 401
    # Only the scrape key: not even the governor's (a Prometheus configuration never holds it).
    for role in ("bank", "governor"):
        r = bank.get("/metrics", headers={"Authorization": keys[role]})
        assert r.status_code == 403 and r.json()["code"] == "role_forbidden"
    # And the scrape key reads metrics only: nothing an anonymous caller could not read besides.
    scraper = {"Authorization": keys["scraper"]}
    assert bank.post("/api/v1/keys", json={"organisation": "x", "role": "governor"}, headers=scraper).status_code == 403
    assert bank.get("/api/v1/materials", headers=scraper).status_code == 403
    assert bank.get("/api/v1/access-log", headers=scraper).status_code == 403
    before = scrape(bank, keys)
    for _ in range(3):
        assert bank.post("/api/v1/verify/code", json={"code": "not a code"}).json()["status"] == "INVALID"
    after = scrape(bank, keys)
    assert value(after, "qiyema_verdicts_total", subject="code", status="INVALID", reason="code_not_qiyema") == \
        value(before, "qiyema_verdicts_total", subject="code", status="INVALID", reason="code_not_qiyema") + 3
    assert value(after, "qiyema_http_request_seconds_count", method="POST", route="/api/v1/verify/code",
                 status="200") >= 3  # counted by route template, not by the path sent
    assert value(after, "qiyema_chain_head_age_seconds") >= 0
    assert ("qiyema_chain_mirror_block", ()) in after  # -1 here: no follower runs in this test
    # A confirmed material waits in the outbox until its batch is anchored.
    m = upload(bank, keys["enterprise"]).json()
    bank.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
    waiting = scrape(bank, keys)
    assert value(waiting, "qiyema_outbox_depth", kind="materials") == 1
    assert value(waiting, "qiyema_outbox_depth", kind="enterprises") == 0  # both registered on chain
    bank.app.state.anchorer.run_once(force=True)
    done = scrape(bank, keys)
    assert value(done, "qiyema_outbox_depth", kind="materials") == 0
    assert value(done, "qiyema_anchor_batch_size_count") == 1 and value(done, "qiyema_anchor_batch_size_sum") == 1
    assert value(done, "qiyema_time_to_proof_seconds_count") == 1


def test_every_response_carries_a_request_id_and_keeps_a_plain_one_of_the_caller(api):
    mine = api.get("/healthz", headers={"X-Request-ID": "trace-1234abcd"})
    assert mine.headers["x-request-id"] == "trace-1234abcd"
    made = api.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert api.get("/no/such/page").headers["x-request-id"]


def test_logs_are_json_lines_with_the_request_id():
    record = logging.LogRecord("qiyema.test", logging.WARNING, __file__, 1, "chain write deferred: %s", ("timeout",), None)
    token = request_id.set("abc12345")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "chain write deferred: timeout" and entry["request_id"] == "abc12345"
    assert entry["level"] == "warning" and entry["time"].endswith("Z")


def test_refused_sign_ins_are_counted(api, keys, runtime):
    from materials_api.identity.models import Role

    runtime_accounts = api.app.state.accounts
    runtime_accounts.create_user("某公司", "li.si", "李四", Role.CLERK, password="correct horse battery")
    for _ in range(2):
        api.post("/login", data={"username": "li.si", "password": "wrong"}, follow_redirects=False)
    samples = scrape(api, keys)
    assert sum(v for (name, labels), v in samples.items() if name == "qiyema_login_failures_total") == 2


def test_scan_cache_hits_and_misses_are_counted(api, keys):
    from tests.materials_api.test_codes_api import NAME, USCC, static_url

    r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": NAME}, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 201
    url = static_url(api, keys)
    before = scrape(api, keys)
    for _ in range(3):
        assert api.post("/api/v1/verify/code", json={"code": url}).json()["status"] == "VALID"
    after = scrape(api, keys)

    def moved(cache, outcome):
        return (value(after, "qiyema_cache_lookups_total", cache=cache, outcome=outcome)
                - value(before, "qiyema_cache_lookups_total", cache=cache, outcome=outcome))

    # The first scan builds the answer (and the public view); the next two are served whole.
    assert moved("scan_answer", "miss") == 1 and moved("scan_answer", "hit") == 2
    assert moved("public_view", "miss") == 1 and moved("public_view", "hit") == 0
