"""The one-call leaf view: the hand codec agrees with eth_abi (vectors) and with the deployed
contract, in process and on a real node over plain JSON-RPC, and a verdict names its block."""

import time

import pytest
from eth_abi import decode, encode

from chain.client import ChainClient
from chain.deploy import deploy
from chain.errors import TransactionReverted
from chain.keys import load_or_create
from chain.leaf_status import (
    LEAF_STATUS,
    LEAF_STATUSES,
    decode_leaf_status,
    decode_leaf_statuses,
    encode_leaf_status,
    encode_leaf_statuses,
    read_leaf_status,
    read_leaf_statuses,
)
from chain.ledger import QiyemaLedger
from chain.material_verify import NOTARY_ROLE
from chain.node import AnvilNode
from tests.conftest import free_port

ROOT = bytes.fromhex("11" * 32)
ROLE = bytes.fromhex("22" * 32)
LEAF = bytes.fromhex("66" * 32)
STATUS_TYPES = "(address,uint32,uint64,uint64,bool,bool,bool,bool,uint64,uint8,uint64,uint64)"


def test_vectors_calldata_matches_the_abi():
    assert LEAF_STATUS.hex() == "%08x" % int.from_bytes(LEAF_STATUS, "big")  # 4 bytes
    call = encode_leaf_status(ROOT, 7, LEAF, ROLE)
    assert call[4:] == encode(["bytes32", "uint256", "bytes32", "bytes32"], [ROOT, 7, LEAF, ROLE])
    leaves = [(ROOT, 0, LEAF), (bytes.fromhex("33" * 32), 4095, bytes.fromhex("55" * 32))]
    many = encode_leaf_statuses(leaves, ROLE)
    assert many[:4] == LEAF_STATUSES
    assert many[4:] == encode(["bytes32[]", "uint256[]", "bytes32[]", "bytes32"],
                              [[r for r, _, _ in leaves], [i for _, i, _ in leaves], [h for _, _, h in leaves], ROLE])
    assert encode_leaf_statuses([], ROLE)[4:] == encode(["bytes32[]", "uint256[]", "bytes32[]", "bytes32"],
                                                        [[], [], [], ROLE])


def test_vectors_answers_decode_as_the_abi_says():
    row = ("0x" + "ab" * 20, 1024, 1_700_000_000, 777, True, True, False, True, 700, 2, 12345, 1_700_000_100)
    st = decode_leaf_status(encode([STATUS_TYPES], [row]))
    assert (st.anchorer.lower(), st.leaf_count, st.anchored_at, st.anchored_block, st.revoked, st.anchorer_held_role,
            st.anchorer_retired, st.anchorer_compromised, st.compromised_from_block, st.record_status, st.block_number,
            st.block_timestamp) == row
    rows = [row, ("0x" + "00" * 20, 0, 0, 0, False, False, False, False, 0, 0, 12345, 1_700_000_100)]
    out = decode_leaf_statuses(encode([f"{STATUS_TYPES}[]"], [rows]))
    assert [s.revoked for s in out] == [True, False] and out[1].anchorer is None and not out[1].anchored
    with pytest.raises(ValueError):
        decode_leaf_status(b"\0" * 64)  # an older contract's shorter answer
    assert decode([f"{STATUS_TYPES}[]"], encode([f"{STATUS_TYPES}[]"], [rows]))[0][0][1] == 1024


def _deployed(client, tmp_path):
    gov = load_or_create(tmp_path / "gov.eth")
    notary = load_or_create(tmp_path / "notary.eth")
    for a in (gov, notary):
        client.fund(a.address, 10**20)
    record, _ = deploy(client, gov, tmp_path / "deployments", grants={"NOTARY_ROLE": [notary.address]})
    return QiyemaLedger(client, record), record.address, gov, notary


def _check_against_contract(client, tmp_path):
    ledger, address, gov, notary = _deployed(client, tmp_path)
    root = bytes.fromhex("44" * 32)
    ledger.anchor(notary, root, 300)
    ledger.revoke_leaves(notary, root, [1, 299])
    head = client.w3.eth.get_block("latest")
    st = read_leaf_status(client, address, root, 1, LEAF, NOTARY_ROLE)
    assert st.anchorer == notary.address and st.leaf_count == 300 and st.revoked and st.anchorer_held_role
    assert st.block_number == head["number"]
    many = read_leaf_statuses(client, address, [(root, 0, LEAF), (root, 1, LEAF), (root, 299, LEAF),
                                                (bytes(31) + b"\1", 0, LEAF)], NOTARY_ROLE)
    assert [s.revoked for s in many] == [False, True, True, False]
    assert [s.anchored for s in many] == [True, True, True, False]
    assert len({s.block_number for s in many}) == 1  # one call, one block
    # Pinned to a block: before the revocations, nothing was revoked.
    assert not read_leaf_status(client, address, root, 1, LEAF, NOTARY_ROLE, block=head["number"] - 1).revoked
    ledger.revoke_role(gov, "NOTARY_ROLE", notary.address)
    retired = read_leaf_status(client, address, root, 0, LEAF, NOTARY_ROLE)
    assert retired.anchorer_held_role and retired.anchorer_retired and not retired.anchorer_compromised
    with pytest.raises(TransactionReverted) as err:
        client.eth_call(address, encode_leaf_statuses([(root, 0, LEAF)], NOTARY_ROLE)[:-32])  # malformed calldata
    assert err.value is not None
    return st, head


def test_the_view_in_process(evm, tmp_path):
    _check_against_contract(evm, tmp_path)


@pytest.mark.anvil
def test_the_view_on_anvil_over_plain_json_rpc(tmp_path):
    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    try:
        client = ChainClient.from_url(node.url)
        st, head = _check_against_contract(client, tmp_path)
        # The answer's time is the block's own (what the liveness check compares with now).
        assert abs(st.block_timestamp - head["timestamp"]) <= 1
        assert abs(st.block_timestamp - time.time()) < 60
    finally:
        node.stop()


@pytest.mark.anvil
def test_verify_batch_from_the_command_line_against_a_node(tmp_path):
    """`qiyema material verify-batch` on a folder and on a manifest, over JSON-RPC to anvil."""
    import hashlib
    import json
    import secrets

    from click.testing import CliRunner

    from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle
    from materials_api.cli import main as cli

    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    try:
        client = ChainClient.from_url(node.url)
        ledger, address, gov, notary = _deployed(client, tmp_path)
        contents = [b"%PDF-1.7\n" + secrets.token_bytes(40) for _ in range(3)]
        leaves = [LeafInput(hashlib.sha256(c).digest(), b"\1" * 32, "lease_contract", 1, 0, i, secrets.token_bytes(32))
                  for i, c in enumerate(contents)]
        tree = MerkleTree([leaf.hash() for leaf in leaves])
        receipt = ledger.anchor(notary, tree.root, 3)
        ledger.revoke_leaves(notary, tree.root, [0])
        anchor = Anchor(client.chain_id, address, receipt.tx_hash, receipt.block_number)
        folder = tmp_path / "docs"
        folder.mkdir()
        for i, (c, leaf) in enumerate(zip(contents, leaves)):
            (folder / f"m{i}.pdf").write_bytes(c if i != 1 else c + b"altered")
            (folder / f"m{i}.pdf.proof.json").write_text(ProofBundle(leaf, tree.proof(i), tree.root, anchor).dumps())
        (folder / "lost.pdf.proof.json").write_text((folder / "m2.pdf.proof.json").read_text())  # no file beside it
        # Without a pinned trust list a standalone verifier refuses to judge (exit 2).
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(folder), "--rpc", node.url],
                                    env={"QIYEMA_HOME": str(tmp_path / "nohome")})
        assert result.exit_code == 2 and "no trust list" in result.stderr
        from chain.trust import TrustedDeployment, TrustList

        trust_list = TrustList(gov.address, 0, [TrustedDeployment(client.chain_id, address, "0x", 0)])
        trust_list.sign(gov, 1)
        (tmp_path / "trust.json").write_text(json.dumps(trust_list.to_json()))
        pin = ["--rpc", node.url, "--trust-list", str(tmp_path / "trust.json"), "--governor", gov.address]
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(folder), *pin[2:4]] + pin[:2])
        assert result.exit_code == 2 and "--governor" in result.stderr  # a list without its pinned signer
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(folder), "--rpc", node.url,
                                          "--trust-list", str(tmp_path / "trust.json"), "--governor", notary.address])
        assert result.exit_code == 2 and "not signed by the trusted governor" in result.stderr
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(folder), *pin])
        assert result.exit_code == 1, result.output
        status = {line.split()[1].rsplit("/", 1)[-1]: line.split()[0] for line in result.stdout.splitlines()}
        assert status == {"lost.pdf": "UNREADABLE", "m0.pdf": "INVALID", "m1.pdf": "INVALID", "m2.pdf": "VALID"}
        assert "4 verified: 2 INVALID, 1 UNREADABLE, 1 VALID" in result.stderr
        # A manifest (CSV) of the good one: exit 0, one JSON verdict per line naming its block.
        (tmp_path / "list.csv").write_text("file,proof\ndocs/m2.pdf,docs/m2.pdf.proof.json\n")
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(tmp_path / "list.csv"), "--json", *pin])
        assert result.exit_code == 0, result.output
        line = json.loads(result.stdout.splitlines()[0])
        assert line["status"] == "VALID" and line["block"]["number"] == client.block_number()
        # Unreadable input: a clear message and exit 2.
        (tmp_path / "bad.jsonl").write_text("{not json\n")
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(tmp_path / "bad.jsonl"), *pin])
        assert result.exit_code == 2 and "not a JSON line" in result.stderr
        (tmp_path / "empty").mkdir()
        result = CliRunner().invoke(cli, ["material", "verify-batch", str(tmp_path / "empty"), *pin])
        assert result.exit_code == 2 and "no proof bundles" in result.stderr
    finally:
        node.stop()


@pytest.mark.anvil
def test_verify_a_record_from_the_command_line_against_a_node(tmp_path):
    """`qiyema records verify BUNDLE --record FILE`: a record's bundle (version 2), over JSON-RPC."""
    import json
    import secrets

    from click.testing import CliRunner

    from chain.ledger import RecordStatus
    from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle, record_content_sha256
    from materials_api.cli import main as cli

    node = AnvilNode(tmp_path / "chain", port=free_port())
    node.start()
    try:
        client = ChainClient.from_url(node.url)
        ledger, address, gov, notary = _deployed(client, tmp_path)
        issuer = load_or_create(tmp_path / "issuer.eth")
        client.fund(issuer.address, 10**20)
        ledger.grant_role(gov, "issuer:permit.food", issuer.address)
        contents = [{"uscc": "91350100M000100Y43", "kind": "food_business", "number": f"JY{i}",
                     "data": {"items": "热食"}, "valid_from": None, "valid_until": None} for i in range(3)]
        leaves = [LeafInput(record_content_sha256(**c), b"\1" * 32, "food_business", 1, 0, i, secrets.token_bytes(32))
                  for i, c in enumerate(contents)]
        tree = MerkleTree([leaf.hash() for leaf in leaves])
        receipt = client.wait(ledger.send_issue_records(issuer, "permit.food", [tree.root], [3]))
        client.wait(ledger.send_set_record_status(issuer, tree.root, 2, RecordStatus.REVOKED, "revoked"))
        anchor = Anchor(client.chain_id, address, receipt.tx_hash, receipt.block_number)
        for i in range(3):
            (tmp_path / f"r{i}.proof.json").write_text(
                ProofBundle(leaves[i], tree.proof(i), tree.root, anchor, category="permit.food").dumps())
            (tmp_path / f"r{i}.json").write_text(json.dumps(contents[i], ensure_ascii=False))
        # The trust list from the home (as on the service's own machine).
        from chain.trust import TrustedDeployment, TrustList

        trust_list = TrustList(gov.address, 0, [TrustedDeployment(client.chain_id, address, "0x", 0)])
        trust_list.sign(gov, 1)
        (tmp_path / "home").mkdir()
        (tmp_path / "home" / "trust-list.json").write_text(json.dumps(trust_list.to_json()))
        home = {"QIYEMA_HOME": str(tmp_path / "home")}

        def verify(i, *extra):
            return CliRunner().invoke(cli, ["records", "verify", str(tmp_path / f"r{i}.proof.json"), "--record",
                                            str(tmp_path / f"r{i}.json"), "--rpc", node.url, *extra], env=home)

        ok = verify(0, "--json")
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["status"] == "VALID"
        revoked = verify(2)
        assert revoked.exit_code == 1 and "record_revoked_on_chain" in revoked.output
        (tmp_path / "r1.json").write_text(json.dumps({**contents[1], "number": "JY-altered"}))
        assert "content_altered" in verify(1).output
        # A material's bundle, or no bundle at all: a message and exit 2.
        material = ProofBundle(leaves[0], tree.proof(0), tree.root, anchor)
        (tmp_path / "m.proof.json").write_text(material.dumps())
        wrong = CliRunner().invoke(cli, ["records", "verify", str(tmp_path / "m.proof.json"), "--rpc", node.url],
                                   env=home)
        assert wrong.exit_code == 2 and "material verify" in wrong.output
        missing = CliRunner().invoke(cli, ["records", "verify", str(tmp_path / "none.json"), "--rpc", node.url],
                                     env=home)
        assert missing.exit_code == 2 and "cannot read" in missing.output
    finally:
        node.stop()


def test_a_file_is_fingerprinted_in_one_mebibyte_pieces_whatever_its_size(tmp_path):
    """`qiyema material verify` on an inspector's laptop and the bulk importer hash files of any
    size (scanned archives run to gigabytes) reading 1 MiB at a time."""
    import hashlib
    import os
    import tracemalloc

    from chain.material_verify import sha256_of

    data = os.urandom(9 << 20)  # 9 MiB: a piece size of 2 MiB or the whole file would show
    big = tmp_path / "档案扫描件.pdf"
    big.write_bytes(data)
    tracemalloc.start()
    try:
        digest = sha256_of(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(data).digest()
    assert peak < (3 << 20), peak  # two 1 MiB pieces at most (the one hashed, the next read); 2 MiB ones make 4
    (tmp_path / "empty.pdf").write_bytes(b"")
    assert sha256_of(tmp_path / "empty.pdf") == hashlib.sha256(b"").digest()
