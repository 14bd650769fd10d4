"""The live feed: an authority's system pushes its changes (`POST /api/v1/records/batch`),
idempotent by (issuer, source_id, source_version); records land in Merkle batches on chain."""

import json
import random

import pytest

from chain.ledger import RecordStatus
from chain.proof import MerkleTree, ProofBundle, fold
from codes.scan import scan
from codes.uscc import generate
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.records.models import Record
from tests.conftest import RECORD_BUNDLE, grant_writers

USCCS = [generate(random.Random(n)) for n in range(5)]


@pytest.fixture
def feed(api, keys, runtime):
    """Five registered enterprises and two issuer keys (food permits, business licences)."""
    for n, uscc in enumerate(USCCS):
        r = api.post("/api/v1/enterprises", json={"uscc": uscc, "name": f"示例企业{n}"},
                     headers={"Authorization": keys["registrar"]})
        assert r.status_code == 201, r.text
    with runtime.sessions.begin() as s:
        for name, org, scope in (("food", "市场监管局食品科", "permit.food"), ("licence", "市场监管局登记科", "licence")):
            _, plain = create_key(s, org, Role.ISSUER, scope)
            keys[name] = f"Bearer {plain}"
    grant_writers(runtime)

    def send(who, changes, status=200):
        r = api.post("/api/v1/records/batch", json={"changes": changes}, headers={"Authorization": keys[who]})
        assert r.status_code == status, r.text
        return r.json()

    return send


def permit(n, version=1, **extra):
    return {"uscc": USCCS[n % len(USCCS)], "kind": "food_business", "number": f"JY1310110{n:07d}",
            "data": {"items": "热食类食品制售"}, "valid_until": "2030-12-31", "source_id": f"FP-{n}",
            "source_version": version, **extra}


def rows(runtime, **where):
    with runtime.sessions() as s:
        q = s.query(Record).filter_by(**where).order_by(Record.id)
        return q.all()


def settle(api):
    records = api.app.state.records
    while records.reconcile():
        pass


def public_view(api, keys, uscc):
    png = api.get(f"/api/v1/enterprises/{uscc}/code.png", headers={"Authorization": keys["registrar"]})
    r = api.post("/api/v1/verify/code", json={"code": scan(png.content)[0]})
    assert r.status_code == 200, r.text
    return r.json()["view"]


def test_a_call_writes_every_valid_change_and_refuses_the_rest_with_reasons(api, runtime, feed):
    bad = [
        {**permit(90), "uscc": "91350100M000100Y4X"},  # check character wrong
        {**permit(91), "kind": "no_such_kind"},
        {**permit(92), "valid_until": "31/12/2030"},
        {**permit(93), "kind": "business_licence"},  # another category's kind
        {**permit(94), "uscc": generate(random.Random(99))},  # valid, but not registered
        {**permit(95), "source_version": 0},
        {k: v for k, v in permit(96).items() if k != "source_id"},
    ]
    changes = [permit(n) for n in range(20)]
    changes[3:3] = bad
    out = feed("food", changes)
    assert (out["applied"], out["unchanged"], out["refused"]) == (20, 0, 7)
    refused = {i["index"]: i["reason"] for i in out["items"] if i["outcome"] == "refused"}
    assert refused == {3: "uscc_check_character", 4: "unknown_record_kind", 5: "date_format", 6: "category_forbidden",
                       7: "enterprise_not_found", 8: "source_version_invalid", 9: "source_id_missing"}
    stored = rows(runtime, issuer_organisation_id=rows(runtime, source_id="FP-0")[0].issuer_organisation_id)
    assert len(stored) == 20 and all(r.chain_state == "pending" for r in stored)
    # One Merkle batch for the call: its leaves, in order, make the batch's root, and each
    # record's path (made from them for its bundle) leads there.
    assert len({r.root for r in stored}) == 1
    digest = runtime.chain.tree_hash  # keccak256, or sm3 under the gm profile
    tree = MerkleTree([r.leaf for r in sorted(stored, key=lambda r: r.leaf_index)], digest)
    assert tree.root == stored[0].root and sorted(r.leaf_index for r in stored) == list(range(20))
    assert all(fold(r.leaf, tree.proof(r.leaf_index), digest) == r.root for r in stored)


def test_the_chain_witnesses_a_batch_in_one_transaction(api, runtime, feed):
    out = feed("food", [permit(n) for n in range(30)])
    assert out["applied"] == 30
    settle(api)
    stored = rows(runtime, kind="food_business")
    assert {r.chain_state for r in stored} == {"confirmed"}
    assert len({r.tx_hash for r in stored}) == 1
    ledger = runtime.chain.ledger
    assert all(ledger.record_of(r.root, r.leaf_index).status == RecordStatus.VALID for r in stored)
    # The proof bundle a verifier gets: the record's place in the batch, a path to the anchored root.
    bundle = ProofBundle.from_json(api.get(f"/api/v1/records/{stored[7].id}/proof").json())
    assert bundle.leaf.index == 7 and len(bundle.proof) == 5
    assert bundle.digest == runtime.chain.tree_hash
    assert fold(bundle.leaf_hash, bundle.proof, bundle.digest) == bundle.root == stored[7].root
    assert bundle.anchor.tx_hash == stored[7].tx_hash


def test_a_record_bundle_verifies_independently_and_follows_its_status_on_chain(api, keys, runtime, feed):
    from chain.material_verify import verify_material, verify_record

    feed("food", [permit(n) for n in range(5)])
    settle(api)
    record = rows(runtime, kind="food_business")[3]
    data = api.get(f"/api/v1/records/{record.id}/proof").json()
    assert data["version"] == RECORD_BUNDLE and data["record"] == {"category": "permit.food"}
    bundle = ProofBundle.from_json(data)
    content = {"uscc": USCCS[3], "kind": "food_business", "number": record.number, "data": json.loads(record.data),
               "valid_from": record.valid_from, "valid_until": record.valid_until}
    client = runtime.chain.client  # no service, no database: the bundle, the content, a node

    def verdict(**kw):
        v = verify_record(bundle, client=client, trust=runtime.chain.trust, **{"content": content, **kw})
        return v.status.value, {c.name.value: c.reason.value for c in v.checks}

    status, checks = verdict()
    assert status == "VALID", checks
    assert checks == {"integrity": "content_matches", "proof": "path_leads_to_root", "anchor": "root_anchored",
                      "issuer": "category_issuer", "status": "in_force"}
    assert verdict(content={**content, "number": "JY-forged"})[1]["integrity"] == "content_altered"
    assert verdict(content=None)[1]["integrity"] == "no_content"
    # Its dates are part of what was issued: a licence "extended" on paper is not the record.
    assert record.valid_until and record.valid_from is None
    for forged in ({"valid_until": record.valid_until + 365 * 86400}, {"valid_from": record.valid_until - 86400}):
        assert verdict(content={**content, **forged})[1]["integrity"] == "content_altered", forged
    # Judged at the time the verifier names: in force to its last second, expired after it.
    assert verdict(now=record.valid_until) == ("VALID", checks)
    assert verdict(now=record.valid_until + 1) == ("INVALID", {**checks, "status": "record_expired"})
    expired = verify_record(bundle, content=content, client=client, trust=runtime.chain.trust, now=record.valid_until + 1)
    assert expired.check("status").message == "the validity window has ended"
    in_force = verify_record(bundle, content=content, client=client, trust=runtime.chain.trust)
    assert in_force.check("status").message == "in force on chain" and in_force.check("liveness") is None
    # Asked to, it checks that the chain is live (a halted chain hides revocations sent since).
    head_time = client.w3.eth.get_block("latest")["timestamp"]
    def liveness(age):
        v = verify_record(bundle, content=content, client=client, trust=runtime.chain.trust, now=head_time + age,
                          max_head_age=60)
        return v.status.value, v.check("liveness").reason.value, v.check("liveness").message

    assert liveness(60) == ("VALID", "chain_live", "newest block 60 s old")  # its last second
    assert liveness(61) == ("ERROR", "chain_halted", "the newest block is 61 s old: the chain has halted, so a "
                                                     "revocation sent since cannot be seen")
    # The issuer suspends it: the chain says so to every verifier.
    r = api.post(f"/api/v1/records/{record.id}/status", json={"status": "suspended", "reason": "停业整顿"},
                 headers={"Authorization": keys["food"]})
    assert r.status_code == 200, r.text
    settle(api)
    assert verdict() == ("INVALID", {**checks, "status": "record_suspended"})
    suspended = verify_record(bundle, content=content, client=client, trust=runtime.chain.trust).check("status")
    assert suspended.message == "suspended on chain (暂停)"
    r = api.post(f"/api/v1/records/{record.id}/status", json={"status": "revoked", "reason": "吊销许可证"},
                 headers={"Authorization": keys["food"]})
    assert r.status_code == 200, r.text
    settle(api)
    revoked = verify_record(bundle, content=content, client=client, trust=runtime.chain.trust).check("status")
    assert (revoked.reason.value, revoked.message) == ("record_revoked_on_chain", "revoked on chain (撤销/吊销)")
    # A record's bundle judged as if a notary had anchored it (its category dropped) is refused.
    as_material = ProofBundle(bundle.leaf, bundle.proof, bundle.root, bundle.anchor, digest=bundle.digest)
    refused = verify_material(as_material, content_sha256=None, client=client, trust=runtime.chain.trust).check("issuer")
    assert (refused.status.value, refused.reason.value, refused.message) == (
        "INVALID", "not_notary", f"the writer did not hold the notary role in block {bundle.anchor.block_number}")


def test_a_replayed_call_changes_nothing(api, runtime, feed):
    changes = [permit(n) for n in range(10)]
    first = feed("food", changes)
    again = feed("food", changes)
    assert (again["applied"], again["unchanged"], again["refused"]) == (0, 10, 0)
    assert [i["record_id"] for i in again["items"]] == [i["record_id"] for i in first["items"]]
    assert len(rows(runtime, kind="food_business")) == 10


def test_versions_older_or_reused_are_refused_and_a_newer_one_supersedes(api, keys, runtime, feed):
    feed("food", [permit(1, version=5)])
    out = feed("food", [permit(1, version=4), {**permit(1, version=5), "number": "JY-OTHER"}])
    assert [i["reason"] for i in out["items"]] == ["stale_version", "source_version_reused"]
    settle(api)
    original = rows(runtime, source_id="FP-1")[0]

    # A newer version suspending it: in place, in the very next scan, then on chain.
    out = feed("food", [permit(1, version=6, status="suspended", reason="停业整顿")])
    assert out["items"][0]["outcome"] == "status_changed" and out["items"][0]["record_id"] == original.id
    view = public_view(api, keys, USCCS[1])
    shown = next(i for i in view["permit"] if i["id"] == original.id)
    assert shown["status"] == "suspended" and shown["verdict"]["status"] == "INVALID"
    settle(api)
    assert runtime.chain.ledger.record_of(original.root, original.leaf_index).status == RecordStatus.SUSPENDED

    # A newer version with other content: a new record; the old one is revoked, on chain too.
    out = feed("food", [permit(1, version=7, data={"items": "冷食类食品制售"})])
    assert out["items"][0]["outcome"] == "amended"
    new_id = out["items"][0]["record_id"]
    assert new_id != original.id
    old = rows(runtime, id=original.id)[0]
    assert (old.status, old.superseded_by_id) == ("revoked", new_id)
    settle(api)
    ledger = runtime.chain.ledger
    assert ledger.record_of(old.root, old.leaf_index).status == RecordStatus.REVOKED
    new = rows(runtime, id=new_id)[0]
    assert ledger.record_of(new.root, new.leaf_index).status == RecordStatus.VALID
    listed = api.get("/api/v1/records", params={"uscc": USCCS[1]}, headers={"Authorization": keys["food"]}).json()
    assert [r["id"] for r in listed if r.get("kind") == "food_business"] == [new_id]


def test_changes_within_one_call_apply_in_order(api, runtime, feed):
    out = feed("food", [permit(2, 1), permit(2, 1), permit(2, 2, status="suspended"),
                        permit(2, 3, data={"items": "x"}), permit(2, 4, data={"items": "x"}, status="revoked")])
    assert [i["outcome"] for i in out["items"]] == ["created", "unchanged", "status_changed", "amended",
                                                    "status_changed"]
    ids = [i["record_id"] for i in out["items"]]
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4]
    first, second = rows(runtime, source_id="FP-2")
    assert (first.status, first.superseded_by_id, second.status, second.source_version) == \
        ("revoked", second.id, "revoked", 4)
    settle(api)
    ledger = runtime.chain.ledger
    assert ledger.record_of(first.root, first.leaf_index).status == ledger.record_of(second.root, second.leaf_index).status == RecordStatus.REVOKED


def test_an_issuer_touches_only_its_own_category_and_its_own_sources(api, keys, runtime, feed):
    feed("food", [permit(3)])
    licence = {"uscc": USCCS[3], "kind": "business_licence", "number": USCCS[3], "source_id": "FP-3",
               "source_version": 2}
    out = feed("licence", [licence, {**permit(3, version=2), "status": "revoked"}])
    assert out["items"][0]["outcome"] == "created"  # the same source id in another issuer's system
    assert out["items"][1]["reason"] == "category_forbidden"
    assert rows(runtime, source_id="FP-3", kind="food_business")[0].status == "valid"
    feed("enterprise", [permit(4)], status=403)
    assert feed("bank", [permit(4)])["items"][0]["reason"] == "category_forbidden"  # banks write receipts only


def test_a_malformed_call_is_refused_whole(api, feed):
    assert feed("food", [], status=422)
    assert feed("food", [permit(n) for n in range(10_001)], status=422)
    out = feed("food", [permit(1), "not an object"], status=422)
    assert out["errors"][0]["loc"] == ["body", "changes", 1]
    assert rows(api.app.state.runtime, kind="food_business") == []  # nothing of a refused call is kept


def test_a_record_is_found_only_by_an_id_that_exists_and_of_the_kind_asked_for(api, keys, runtime, feed):
    """A food permit's id asked for as an inspection (its photo) is "no record", as an unknown id
    is — never a 500, never another kind's data."""
    feed("food", [permit(0)])
    settle(api)
    record = rows(runtime, kind="food_business")[0]
    photo = api.get(f"/api/v1/inspections/{record.id}/photo", headers={"Authorization": keys["inspector"]})
    assert (photo.status_code, photo.json()["code"], photo.json()["message"]) == (
        404, "record_not_found", f"no record {record.id}")
    unknown = api.get("/api/v1/records/999999/proof")
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["message"]) == (
        404, "record_not_found", "no record 999999")
    assert api.get(f"/api/v1/records/{record.id}/proof").status_code == 200  # a public record: anyone
