"""Records in bulk: `import_file` (JSON Lines and CSV, rejects with line numbers, resumable) and
`follow_once` against a small HTTP change list the test serves."""

import csv
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from chain.ledger import RecordStatus
from codes.uscc import generate
from materials_api.identity.api_keys import authenticate, create_key
from materials_api.identity.models import Role
from materials_api.records.follow import SourceAccess, SourceError, follow_once
from materials_api.records.importer import ImportFileError, import_file
from materials_api.records.models import Record
from tests.conftest import grant_writers

USCCS = [generate(random.Random(1000 + n)) for n in range(4)]


@pytest.fixture
def issuer(api, keys, runtime):
    for n, uscc in enumerate(USCCS):
        r = api.post("/api/v1/enterprises", json={"uscc": uscc, "name": f"示例企业{n}"},
                     headers={"Authorization": keys["registrar"]})
        assert r.status_code == 201, r.text
    with runtime.sessions.begin() as s:
        _, plain = create_key(s, "市场监管局食品科", Role.ISSUER, "permit.food")
    grant_writers(runtime)
    with runtime.sessions() as s:
        return authenticate(s, plain)


def change(n, version=1, **extra):
    return {"uscc": USCCS[n % len(USCCS)], "kind": "food_business", "number": f"JY{n:014d}",
            "data": {"items": "热食类食品制售", "address": f"杨浦区国定路{n}号"}, "valid_from": "2025-01-01",
            "valid_until": "2030-12-31", "source_id": f"FP-{n}", "source_version": version, **extra}


def stored(runtime):
    with runtime.sessions() as s:
        return s.query(Record).order_by(Record.id).all()


def test_a_json_lines_file_goes_in_with_its_bad_lines_reported(api, runtime, issuer, tmp_path):
    lines = [json.dumps(change(n), ensure_ascii=False) for n in range(25)]
    lines[4] = json.dumps({**change(4), "uscc": "91350100M000100Y4X"})
    lines[9] = json.dumps({**change(9), "kind": "no_such_kind"})
    lines[14] = json.dumps({**change(14), "valid_until": "2030/12/31"})
    lines[19] = "{not json"
    path = tmp_path / "permits.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen = []
    report = import_file(path, api.app.state.record_feed, issuer, witness=api.app.state.records.reconcile,
                         chunk=7, progress=seen.append)
    assert (report.lines, report.applied, report.unchanged, report.rejected) == (25, 21, 0, 4)
    assert sum(seen) == 25
    with open(report.rejections_file, encoding="utf-8") as f:
        rejected = [(int(r["line"]), r["reason_code"]) for r in csv.DictReader(f)]
    assert rejected == [(5, "uscc_check_character"), (10, "unknown_record_kind"), (15, "date_format"),
                        (20, "line_not_json")]
    records = stored(runtime)
    assert len(records) == 21 and {r.chain_state for r in records} == {"confirmed"}
    ledger = runtime.chain.ledger
    assert all(ledger.record_of(r.root, r.leaf_index).status == RecordStatus.VALID for r in records)
    assert len({r.root for r in records}) == 4  # one Merkle batch per chunk of 7 lines
    again = import_file(path, api.app.state.record_feed, issuer)
    assert again.already_finished and len(stored(runtime)) == 21


def test_batches_go_several_to_a_transaction_and_one_issued_elsewhere_is_not_issued_twice(api, runtime, issuer,
                                                                                         tmp_path):
    path = tmp_path / "permits.jsonl"
    path.write_text("".join(json.dumps(change(n), ensure_ascii=False) + "\n" for n in range(20)), encoding="utf-8")
    import_file(path, api.app.state.record_feed, issuer, chunk=5)  # written ahead only: four batches
    roots = list(dict.fromkeys(r.root for r in stored(runtime)))
    assert len(roots) == 4
    records = api.app.state.records
    # Another instance issued the third batch already: the call carrying all four is refused
    # whole, the third is noted where the chain has it, the others go in the next pass.
    account = records.issuer_account(issuer.organisation_id, "permit.food")
    elsewhere = runtime.chain.client.wait(runtime.chain.ledger.send_issue_records(account, "permit.food", [roots[2]], [5]))
    while records.reconcile():
        pass
    held = stored(runtime)
    assert {r.chain_state for r in held} == {"confirmed"}
    assert all(r.block_number and r.tx_hash for r in held)
    assert {r.tx_hash for r in held if r.root == roots[2]} == {elsewhere.tx_hash}
    others = {r.tx_hash for r in held if r.root != roots[2]}
    assert len(others) == 1  # three batches, one transaction
    issued = runtime.chain.ledger.contract.events.RecordsIssued().get_logs(from_block=0)
    assert sorted(e.args.root for e in issued) == sorted(roots)  # each once
    ledger = runtime.chain.ledger
    assert all(ledger.record_of(r.root, r.leaf_index).status == RecordStatus.VALID for r in held)


def test_a_csv_file_is_the_same_changes(api, runtime, issuer, tmp_path):
    path = tmp_path / "permits.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["uscc", "kind", "number", "data", "valid_from", "valid_until",
                                          "status", "source_id", "source_version"])
        w.writeheader()
        for n in range(6):
            w.writerow({**change(n), "data": json.dumps(change(n)["data"], ensure_ascii=False), "status": "valid"})
        w.writerow({**change(1, version=2), "data": json.dumps(change(1)["data"], ensure_ascii=False),
                    "status": "suspended"})
    report = import_file(path, api.app.state.record_feed, issuer, witness=api.app.state.records.reconcile)
    assert (report.lines, report.applied, report.rejected) == (7, 7, 0)
    suspended = [r for r in stored(runtime) if r.source_id == "FP-1"]
    assert [(r.status, r.source_version) for r in suspended] == [("suspended", 2)]
    assert runtime.chain.ledger.record_of(suspended[0].root, suspended[0].leaf_index).status == RecordStatus.SUSPENDED


def test_an_unusable_file_is_refused_whole(api, issuer, tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("name,address\n甲,乙\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="lacks column"):
        import_file(bad, api.app.state.record_feed, issuer)
    binary = tmp_path / "x.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImportFileError, match="UTF-8"):
        import_file(binary, api.app.state.record_feed, issuer)


class _Source:
    """An authority's change list: GET /changes?after=CURSOR&limit=N → JSON Lines."""

    def __init__(self):
        self.changes: list[dict] = []
        self.requests: list[str] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                source.requests.append(self.path)
                q = parse_qs(urlparse(self.path).query)
                after = int(q.get("after", ["0"])[0] or 0)
                limit = int(q.get("limit", ["100"])[0])
                page = source.changes[after:after + min(limit, 4)]  # small pages: the follower must page
                body = "".join(json.dumps({"cursor": str(after + i + 1), "change": c}, ensure_ascii=False) + "\n"
                               for i, c in enumerate(page)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/changes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_follow_reads_a_change_list_from_its_cursor_on(api, runtime, issuer):
    source = _Source()
    try:
        feed = api.app.state.record_feed
        source.changes = [change(n) for n in range(10)]
        assert follow_once(source.url, feed, issuer) == (10, 0)
        assert len(stored(runtime)) == 10
        # New changes: only they are read (from the kept cursor); a revocation shows at once.
        source.changes += [change(3, version=2, status="revoked", reason="许可证被撤销"), {**change(11), "kind": "x"}]
        source.requests.clear()
        assert follow_once(source.url, feed, issuer) == (2, 1)
        assert "after=10" in source.requests[0]
        revoked = [r for r in stored(runtime) if r.source_id == "FP-3"]
        assert [r.status for r in revoked] == ["revoked"]
        assert follow_once(source.url, feed, issuer) == (0, 0)
    finally:
        source.close()
    with pytest.raises(SourceError) as gone:
        follow_once(SourceAccess(source.url, timeout=2), api.app.state.record_feed, issuer)
    assert gone.value.code == "source_unreachable"
