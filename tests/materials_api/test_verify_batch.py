"""Batch verification: many bundles, one verdict each, the chain read once per chunk; through the
API, with bad input refused clearly (the CLI, against a real node: tests/chain/test_leaf_status.py)."""

import hashlib

from chain.material_verify import verify_material, verify_materials
from chain.proof import ProofBundle
from tests.materials_api.test_materials import PDF, anchor, bank, upload  # noqa: F401 - the fixture


def _anchored(api, keys, n: int):
    """n anchored materials (their bytes and bundles); the first revoked, the second withdrawn."""
    ids, contents = [], []
    for i in range(n):
        content = PDF + f"batch {i}".encode()
        m = upload(api, keys["enterprise"], content=content, name=f"财务报表{i}.pdf").json()
        api.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
        ids.append(m["id"])
        contents.append(content)
    anchor(api)
    bundles = [api.get(f"/api/v1/materials/{i}/proof", headers={"Authorization": keys["enterprise"]}).json()
               for i in ids]
    api.post(f"/api/v1/materials/{ids[0]}/revoke", json={"reason": "伪造"}, headers={"Authorization": keys["clerk"]})
    api.post(f"/api/v1/materials/{ids[1]}/withdraw", headers={"Authorization": keys["enterprise"]})
    assert anchor(api).revoked == 2
    return contents, bundles


def test_batch_verdicts_are_the_single_verdicts_and_name_their_block(bank, keys, runtime):
    contents, bundles = _anchored(bank, keys, 6)
    items = [(ProofBundle.from_json(b), hashlib.sha256(c).digest()) for c, b in zip(contents, bundles)]
    items.append((items[2][0], hashlib.sha256(b"another file").digest()))  # the wrong bytes
    progress = []
    batch = verify_materials(items, client=runtime.chain.client, trust=runtime.chain.trust, chunk=4, on_progress=progress.append)
    single = [verify_material(b, content_sha256=d, client=runtime.chain.client,
                              trust=runtime.chain.trust) for b, d in items]
    assert [v.as_dict()["checks"] for v in batch] == [v.as_dict()["checks"] for v in single]
    assert [v.status.value for v in batch] == ["INVALID", "INVALID", "VALID", "VALID", "VALID", "VALID", "INVALID"]
    assert sum(progress) == len(items)
    head = runtime.chain.client.block_number()
    assert all(v.facts["block"]["number"] == head for v in batch)
    # The issuer check names the role a material's writer held, and the block it wrote in.
    issuer = single[2].check("issuer")
    assert (issuer.reason.value, issuer.message) == (
        "notary", f"written in block {items[2][0].anchor.block_number} by a holder of the notary role")


def test_batch_through_the_api(bank, keys):
    contents, bundles = _anchored(bank, keys, 3)
    body = {"items": [{"sha256": hashlib.sha256(c).hexdigest(), "bundle": b} for c, b in zip(contents, bundles)]}
    r = bank.post("/api/v1/verify/materials", json=body)  # anyone may verify
    assert r.status_code == 200, r.text
    out = r.json()
    assert [v["status"] for v in out["verdicts"]] == ["INVALID", "INVALID", "VALID"]
    assert out["counts"] == {"INVALID": 2, "VALID": 1}
    assert {c["name"]: c["reason"] for c in out["verdicts"][0]["checks"]}["status"] == "revoked"
    assert out["verdicts"][2]["block"]["number"] > 0
    # Bad input: the whole call is refused with the item named; nothing is verified half-way.
    broken = {"items": [body["items"][2], {"sha256": "00" * 32, "bundle": {"version": 99}}]}
    r = bank.post("/api/v1/verify/materials", json=broken)
    assert r.status_code == 422 and "items[1]" in r.json()["message"]
    assert bank.post("/api/v1/verify/materials", json={"items": []}).status_code == 422
    too_many = {"items": [body["items"][2]] * 1001}
    assert bank.post("/api/v1/verify/materials", json=too_many).status_code == 422


def test_a_material_is_judged_at_the_time_the_verifier_names(bank, keys, runtime):
    """A material valid until a day is VALID before its end and INVALID after it, by the `now`
    the verifier passes (its clock), in the batch as in the single verdict."""
    h = {"Authorization": keys["enterprise"]}
    m = bank.post("/api/v1/materials", headers=h, files={"file": ("营业执照.pdf", PDF + b"dated")},
                  data={"valid_until": "2030-06-30"})
    assert m.status_code == 201, m.text
    bank.post(f"/api/v1/materials/{m.json()['id']}/confirm", headers=h)
    anchor(bank)
    bundle = ProofBundle.from_json(bank.get(f"/api/v1/materials/{m.json()['id']}/proof", headers=h).json())
    ends = bundle.leaf.valid_until
    assert ends and ends > runtime.clock.time()
    digest = hashlib.sha256(PDF + b"dated").digest()
    for now, status in ((ends - 1, "VALID"), (ends, "VALID"), (ends + 1, "INVALID")):  # valid to its last second
        batch = verify_materials([(bundle, digest)], client=runtime.chain.client, trust=runtime.chain.trust, now=now)
        single = verify_material(bundle, content_sha256=digest, client=runtime.chain.client,
                                 trust=runtime.chain.trust, now=now)
        assert [batch[0].status.value, single.status.value] == [status, status], (now, batch[0].as_dict())
    assert {c.name.value: c.reason.value for c in batch[0].checks}["status"] == "expired"


def test_a_bundle_naming_another_chain_is_never_answered_from_this_node(bank, keys, runtime):
    """The same contract address may be trusted on two chains (a deployment repeated on a second
    network). A bundle naming the other chain, verified in a batch against this chain's node,
    is ERROR `wrong_chain`, never a VALID read from the wrong network."""
    import dataclasses

    from chain.trust import Trust

    contents, bundles = _anchored(bank, keys, 3)
    here = ProofBundle.from_json(bundles[2])
    contract = here.anchor.contract
    other_chain = dataclasses.replace(here, anchor=dataclasses.replace(here.anchor, chain_id=here.anchor.chain_id + 1))
    trust = Trust(runtime.chain.trust.pinned | {(here.anchor.chain_id + 1, contract.lower())}, runtime.chain.tree_hash)
    digest = hashlib.sha256(contents[2]).digest()
    batch = verify_materials([(here, digest), (other_chain, digest)], client=runtime.chain.client, trust=trust)
    assert batch[0].status.value == "VALID"
    assert batch[1].status.value == "ERROR"
    assert {c.name.value: c.reason.value for c in batch[1].checks}["anchor"] == "wrong_chain"
    single = verify_material(other_chain, content_sha256=digest, client=runtime.chain.client, trust=trust)
    assert single.as_dict()["checks"] == batch[1].as_dict()["checks"]
    anchor_check = single.check("anchor")
    assert (anchor_check.status.value, anchor_check.message) == (
        "ERROR", f"the node serves chain {here.anchor.chain_id}, the proof is for chain {here.anchor.chain_id + 1}")


def test_a_node_that_cannot_be_asked_is_an_error_of_the_chain_naming_why_not_where(bank, keys, runtime):
    """A verifier whose node is down (nothing listens at its port) gets ERROR `chain_unavailable`
    for every chain check, with the kind of failure named and the node's address not."""
    from chain.client import ChainClient
    from tests.conftest import free_port

    contents, bundles = _anchored(bank, keys, 3)
    url = f"http://127.0.0.1:{free_port()}"
    down = ChainClient.from_url(url, request_timeout=0.5)
    verdict = verify_material(ProofBundle.from_json(bundles[2]), content_sha256=hashlib.sha256(contents[2]).digest(),
                              client=down, trust=runtime.chain.trust)
    assert verdict.status.value == "ERROR"
    chain_checks = {c.name.value: (c.status.value, c.reason.value, c.message) for c in verdict.checks
                    if c.name.value in ("anchor", "issuer", "status")}
    said = ("ERROR", "chain_unavailable", "the chain node could not be asked (ChainUnreachable)")
    assert chain_checks == {"anchor": said, "issuer": said, "status": said}
    assert "127.0.0.1" not in str(verdict.as_dict())


def test_a_batch_reads_the_chain_once_per_chunk_and_reports_progress_per_hundred(bank, keys, runtime, monkeypatch):
    """What `qiyema material verify --batch` promises a bank checking a city's archive: one
    `eth_call` per chunk of leaves of one contract, however its address is written, and progress
    reported every hundred items and once for the rest."""
    contents, bundles = _anchored(bank, keys, 3)
    genuine = ProofBundle.from_json(bundles[2])
    import dataclasses

    lower = dataclasses.replace(genuine, anchor=dataclasses.replace(genuine.anchor, contract=genuine.anchor.contract.lower()))
    digest = hashlib.sha256(contents[2]).digest()
    items = [(genuine if i % 2 else lower, digest) for i in range(250)]
    client = runtime.chain.client
    calls = []
    real_call = client.eth_call
    monkeypatch.setattr(client, "eth_call", lambda to, data, block="latest": calls.append(to) or real_call(to, data, block))
    # Progress is reported when that many verdicts are made (not before): count them as they are.
    import chain.material_verify as material_verify

    made, progress = [], []
    real_verdict = material_verify._verdict
    monkeypatch.setattr(material_verify, "_verdict", lambda m: made.append(1) or real_verdict(m))

    def report(n):
        progress.append(n)
        assert sum(progress) == len(made), (progress, len(made))

    batch = verify_materials(items, client=client, trust=runtime.chain.trust, chunk=100, on_progress=report)
    assert [v.status.value for v in batch] == ["VALID"] * 250
    assert len(calls) == 3, calls  # 100 + 100 + 50 leaves, in one group whatever the address's case
    assert progress == [100, 100, 50]
    for n, expected in ((7, [7]), (200, [100, 100]), (202, [100, 100, 2])):
        calls.clear(), progress.clear(), made.clear()
        batch = verify_materials(items[:n], client=client, trust=runtime.chain.trust, chunk=4, on_progress=report)
        assert [v.status.value for v in batch] == ["VALID"] * n and len(calls) == -(-n // 4) and progress == expected
    # The default chunk is 500 leaves: 1,001 take three calls.
    calls.clear()
    assert len(verify_materials(items * 4 + items[:1], client=client, trust=runtime.chain.trust)) == 1001
    assert len(calls) == 3
    # Without a chain node: every chain check SKIPPED, nothing asked.
    calls.clear()
    offline = verify_materials(items[:3], client=None, trust=runtime.chain.trust)
    assert [v.status.value for v in offline] == ["SKIPPED"] * 3 and calls == []


def test_a_root_the_chain_does_not_hold_is_invalid_at_the_nodes_own_block_and_judges_no_issuer(bank, keys, runtime):
    """A bundle naming a root the chain never anchored, "anchored" in the block the node is at:
    the node has seen that block, so this is INVALID `root_not_anchored` (not a lagging node's
    ERROR), and with no anchoring there is no anchorer whose role could be judged."""
    import dataclasses

    contents, bundles = _anchored(bank, keys, 3)
    genuine = ProofBundle.from_json(bundles[2])
    client = runtime.chain.client
    forged = dataclasses.replace(genuine, root=b"\x42" * 32,
                                 anchor=dataclasses.replace(genuine.anchor, block_number=client.block_number()))
    verdict = verify_material(forged, content_sha256=hashlib.sha256(contents[2]).digest(), client=client,
                              trust=runtime.chain.trust)
    checks = {c.name.value: c.reason.value for c in verdict.checks}
    assert verdict.status.value == "INVALID" and checks["anchor"] == "root_not_anchored"
    assert "issuer" not in checks, checks


def test_a_materials_bundle_passed_off_as_a_record_finds_no_record_on_chain(bank, keys, runtime):
    """A notary's batch holds materials, not records: the same leaf presented as a record of a
    category (its `category` added) is INVALID twice over, the chain holding no record at that
    place and the notary holding no issuer role for the category."""
    import dataclasses

    contents, bundles = _anchored(bank, keys, 3)
    genuine = ProofBundle.from_json(bundles[2])
    as_record = dataclasses.replace(genuine, category="permit.food")
    verdict = verify_material(as_record, content_sha256=None, client=runtime.chain.client, trust=runtime.chain.trust)
    assert verdict.status.value == "INVALID"
    status = verdict.check("status")
    assert (status.status.value, status.reason.value, status.message) == (
        "INVALID", "record_revoked_on_chain", "the chain holds no record at this place (not a batch of records)")
    issuer = verdict.check("issuer")
    assert (issuer.status.value, issuer.reason.value) == ("INVALID", "not_category_issuer")
