"""The chain mirror: the follower reads the contract's events into the database and agrees with
the chain read directly; it catches up after being away; it follows a reorg on anvil."""

import pytest

from chain.client import ChainClient
from chain.ledger import RecordStatus, issuer_role
from chain.material_verify import NOTARY_ROLE
from chain.node import AnvilNode
from codes.uscc import chain_key
from materials_api.platform.mirror import ChainMirror, MirrorView
from materials_api.records.models import Record
from tests.conftest import free_port
from tests.materials_api.test_materials import PDF, anchor, upload
from tests.materials_api.test_scan_roles import USCC, world  # noqa: F401 - the fixture


def _mirror(runtime, **kw):
    d = runtime.chain.deployment
    return ChainMirror(runtime.sessions, runtime.chain.client, d.address, d.block_number, **kw)


def _follow(mirror):
    mirror.follow(budget=60)


def test_the_mirror_agrees_with_the_chain(api, keys, runtime, world):
    ledger = runtime.chain.ledger
    mirror, view = _mirror(runtime, batch_blocks=3), MirrorView(runtime.sessions)
    assert view.head() is None
    # Materials anchored, one revoked; a permit revoked; the enterprise listed abnormal.
    ids = []
    for i in range(3):
        m = upload(api, keys["enterprise"], content=PDF + bytes([i])).json()
        api.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
        ids.append(m["id"])
    anchor(api)
    api.post(f"/api/v1/materials/{ids[0]}/revoke", json={"reason": "伪造"}, headers={"Authorization": keys["clerk"]})
    anchor(api)
    r = api.post(f"/api/v1/records/{world['permit']['id']}/status", json={"status": "suspended", "reason": "停业整顿"},
                 headers={"Authorization": keys["food"]})
    assert r.status_code == 200
    _follow(mirror)  # in steps of 3 blocks: catching up from the deployment block
    head = view.head()
    assert head.block_number == runtime.chain.client.block_number() and head.synced_at > 0
    bundles = [api.get(f"/api/v1/materials/{i}/proof", headers={"Authorization": keys["enterprise"]}).json()
               for i in ids]
    root = bytes.fromhex(bundles[0]["root"].removeprefix("0x"))
    on_chain = ledger.anchor_of(root)
    mirrored = view.anchor(root)
    assert (mirrored.anchorer, mirrored.leaf_count, mirrored.anchored_at) == \
        (on_chain.anchorer, on_chain.leaf_count, on_chain.anchored_at)
    assert [view.revoked(root, b["leaf"]["index"]) for b in bundles] == \
        [ledger.is_revoked(root, b["leaf"]["index"]) for b in bundles] == [True, False, False]
    assert view.has_role(NOTARY_ROLE, mirrored.anchorer)
    with runtime.sessions() as s:
        permit, licence = s.get(Record, world["permit"]["id"]), s.get(Record, world["licence"]["id"])
    assert view.record_status(permit.root, permit.leaf_index) == RecordStatus.SUSPENDED == \
        ledger.record_of(permit.root, permit.leaf_index).status
    assert view.record_status(licence.root, licence.leaf_index) is None  # issued, never changed
    assert issuer_role("licence") == ledger.role("issuer:licence")  # computed here as the contract does
    issuer = view.anchor(licence.root)
    assert issuer is not None and view.has_role(ledger.role("issuer:licence"), issuer.anchorer)
    assert not view.has_role(ledger.role("issuer:permit.food"), issuer.anchorer)
    status, signer = view.enterprise(chain_key(USCC))
    on_chain = ledger.enterprise(chain_key(USCC))
    assert status == int(on_chain.status) and signer == on_chain.code_signer
    # Reading again changes nothing; a later change is picked up by the next step.
    events = view.event_count()
    assert mirror.step() == 0 and view.event_count() == events
    api.post(f"/api/v1/records/{world['permit']['id']}/status", json={"status": "valid", "reason": "整改完成"},
             headers={"Authorization": keys["food"]})
    _follow(mirror)
    assert view.record_status(permit.root, permit.leaf_index) == RecordStatus.VALID


@pytest.mark.anvil
def test_the_mirror_follows_a_reorg_on_anvil(tmp_path):
    from chain.deploy import deploy
    from chain.keys import load_or_create
    from chain.ledger import QiyemaLedger
    from materials_api.platform.config import Settings
    from materials_api.platform.db import make_engine, migrate, session_factory

    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    try:
        client = ChainClient.from_url(node.url)
        gov, notary = load_or_create(tmp_path / "gov.eth"), load_or_create(tmp_path / "notary.eth")
        for a in (gov, notary):
            client.fund(a.address, 10**20)
        record, _ = deploy(client, gov, tmp_path / "deployments", grants={"NOTARY_ROLE": [notary.address]})
        ledger = QiyemaLedger(client, record)
        settings = Settings(home=tmp_path / "home")
        settings.home.mkdir()
        migrate(settings.db_url)
        engine = make_engine(settings.db_url)
        sessions = session_factory(engine)
        mirror, view = ChainMirror(sessions, client, record.address, record.block_number), MirrorView(sessions)
        kept, forked = bytes.fromhex("aa" * 32), bytes.fromhex("bb" * 32)
        ledger.anchor(notary, kept, 4)
        _follow(mirror)
        snapshot = client.w3.provider.make_request("anvil_snapshot", [])["result"]
        ledger.anchor(notary, forked, 8)
        ledger.revoke_leaves(notary, kept, [1])
        _follow(mirror)
        assert view.anchor(forked) is not None and view.revoked(kept, 1)
        # The chain forks below the mirror's head: those blocks are replaced by others.
        client.w3.provider.make_request("anvil_revert", [snapshot])
        client._local_nonces.clear()
        client.w3.provider.make_request("evm_mine", [])
        ledger.revoke_leaves(notary, kept, [2])
        client.w3.provider.make_request("evm_mine", [])
        client.w3.provider.make_request("evm_mine", [])
        _follow(mirror)
        assert view.anchor(forked) is None and not view.revoked(kept, 1)  # gone with their blocks
        assert view.revoked(kept, 2) and view.anchor(kept).leaf_count == 4
        assert view.head().block_number == client.block_number()
        assert view.head().block_hash == "0x" + bytes(client.w3.eth.get_block("latest")["hash"]).hex()
        engine.dispose()
    finally:
        node.stop()


def test_a_change_made_on_chain_by_another_instance_shows_in_the_next_scan(api, keys, runtime, world):
    """Scans read the mirror, not the node: a suspension written straight to the chain (by
    another instance, or the authority's own system) shows once mined and mirrored, though this
    service's database still says valid; what this service itself wrote shows at once."""
    from tests.materials_api.test_scan_roles import code_of, item, verify

    code = code_of(api, keys)
    mirror = _mirror(runtime)
    _follow(mirror)
    permit = item(verify(api, code)["view"], "permit", world["permit"]["id"])
    assert permit["verdict"]["status"] == "VALID"
    assert {c["name"]: c["message"] for c in permit["verdict"]["checks"]}["anchor"].startswith("anchored in block")
    with runtime.sessions() as s:
        record = s.get(Record, world["permit"]["id"])
    issuer = api.app.state.records.issuer_account(record.issuer_organisation_id, record.category)
    runtime.chain.client.wait(runtime.chain.ledger.send_set_record_status(
        issuer, record.root, record.leaf_index, RecordStatus.SUSPENDED, "other-instance"))
    # Mined, not yet mirrored: the database and the mirror both say in force.
    assert item(verify(api, code)["view"], "permit", world["permit"]["id"])["verdict"]["status"] == "VALID"
    _follow(mirror)
    permit = item(verify(api, code)["view"], "permit", world["permit"]["id"])
    assert permit["status"] == "valid"  # the register still says so: the chain is stricter
    assert permit["verdict"]["status"] == "INVALID"
    assert {c["name"]: c["reason"] for c in permit["verdict"]["checks"]}["status"] == "record_revoked_on_chain"


def test_a_record_verdict_says_error_when_the_mirror_is_behind(api, keys, runtime, world):
    import time

    records = api.app.state.records
    records.settings = records.settings.model_copy(update={"mirror_max_age": 5.0})
    with runtime.sessions() as s:
        permit = s.get(Record, world["permit"]["id"])
    verdict = records.verify(permit, USCC)
    checks = {c.name.value: (c.status.value, c.reason.value) for c in verdict.checks}
    assert verdict.status.value == "ERROR" and checks["liveness"] == ("ERROR", "mirror_behind")  # never followed
    mirror = _mirror(runtime)
    _follow(mirror)
    verdict = records.verify(permit, USCC)
    assert verdict.status.value == "VALID"
    assert {c.name.value: c.reason.value for c in verdict.checks}["liveness"] == "mirror_current"
    later = records.verify(permit, USCC, now=int(time.time()) + 60)  # the follower stopped a minute ago
    assert {c.name.value: c.reason.value for c in later.checks}["liveness"] == "mirror_behind"


def test_a_mirror_of_another_deployment_starts_over(api, keys, runtime, world):
    """After a reset chain brings a new deployment, the old contract's events are not kept."""
    view = MirrorView(runtime.sessions)
    _follow(_mirror(runtime))
    assert view.event_count() > 0
    d = runtime.chain.deployment
    other = ChainMirror(runtime.sessions, runtime.chain.client, "0x" + "12" * 20, runtime.chain.client.block_number())
    _follow(other)
    assert view.event_count() == 0 and view.head().block_number == runtime.chain.client.block_number()
    _follow(ChainMirror(runtime.sessions, runtime.chain.client, d.address, d.block_number))
    with runtime.sessions() as s:
        licence = s.get(Record, world["licence"]["id"])
    assert view.anchor(licence.root) is not None  # read again from its deployment block
