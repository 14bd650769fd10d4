"""Proof format v1 (materials) and v2 (records): frozen test vectors, tree properties, and the
contract accepting our proofs."""

import json
import random

import pytest

from chain.deploy import deploy
from chain.keys import load_or_create
from chain.ledger import QiyemaLedger
from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle, ProofError, fold, record_content_sha256

# Vectors (also in docs/proof-format.md and, for the leaf, in the Hardhat tests via ethers).
LEAF_VECTOR = LeafInput(bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                        bytes(range(32)), "lease_contract", 1, 1893456000, 0, b"\xab" * 32)
LEAF_VECTOR_HASH = "04ed9115ab81289acf14ec68944647fb36332e606874eb4b2489f0bfab1e6231"
TREE_LEAVES = [LeafInput(bytes([i]) * 32, bytes(range(32)), "business_licence", 1, 0, i, bytes([i + 100]) * 32)
               for i in range(5)]
TREE_ROOT = "883f1a7c91394d9dd0f75ce3d0245cdc6fb84078ffc3bff0bc8a74e6e96b3bc1"
PROOF_OF_2 = ["32208d36b9dea7f38fef4745e67ad39ae6a6f7d4c7cd56924b291381b23bb9c9",
              "49703b8bbb9008c45ba0d4443f9ae913e1c9f41d6d383528939b29d12e0364b0",
              "12f7c1445e0feed5c8dc82eee53a067bbf2404f4332b82b014a182b65864040e"]
PROOF_OF_4 = ["8bc6355b5e5a417d214883f74a3d80c524183f4bb13f194e9c4621081d9fa00a"]


def test_leaf_vector():
    assert LEAF_VECTOR.hash().hex() == LEAF_VECTOR_HASH


def test_tree_vectors():
    tree = MerkleTree([leaf.hash() for leaf in TREE_LEAVES])
    assert tree.root.hex() == TREE_ROOT
    assert [p.hex() for p in tree.proof(2)] == PROOF_OF_2
    assert [p.hex() for p in tree.proof(4)] == PROOF_OF_4  # the odd leaf is carried up


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 33, 1000])
def test_every_leaf_proves_and_no_other_does(size):
    rng = random.Random(size)
    leaves = [rng.randbytes(32) for _ in range(size)]
    tree = MerkleTree(leaves)
    for i in range(size):
        assert fold(leaves[i], tree.proof(i)) == tree.root
    assert fold(rng.randbytes(32), tree.proof(0)) != tree.root


@pytest.mark.parametrize("field", ["content_sha256", "entity", "material_type", "material_version",
                                   "valid_until", "index", "salt"])
def test_every_leaf_field_changes_the_leaf(field):
    values = dict(LEAF_VECTOR.__dict__)
    values[field] = {"content_sha256": b"\0" * 32, "entity": b"\1" * 32, "material_type": "other",
                     "material_version": 2, "valid_until": 0, "index": 1, "salt": b"\0" * 32}[field]
    assert LeafInput(**values).hash() != LEAF_VECTOR.hash()


def test_bundle_round_trip_and_refusals():
    tree = MerkleTree([leaf.hash() for leaf in TREE_LEAVES])
    bundle = ProofBundle(TREE_LEAVES[2], tree.proof(2), tree.root, Anchor(1, "0x" + "11" * 20, "0x" + "22" * 32, 7))
    data = json.loads(bundle.dumps())
    again = ProofBundle.from_json(data)
    assert again == bundle and again.proves()
    # The file a bank downloads is for people to read too: one field to a line, indented by two.
    assert bundle.dumps().splitlines()[:2] == ["{", '  "version": 1,']
    with pytest.raises(ProofError, match="version"):
        ProofBundle.from_json({**data, "version": 3})
    with pytest.raises(ProofError) as info:  # a record's version without its category
        ProofBundle.from_json({**data, "version": 2})
    assert info.value.code == "bundle_malformed"
    with pytest.raises(ProofError):  # a material's version with a record part
        ProofBundle.from_json({**data, "record": {"category": "permit.food"}})
    with pytest.raises(ProofError) as info:
        ProofBundle.from_json({**data, "leaf_hash": "0x" + "00" * 32})
    assert info.value.code == "bundle_inconsistent"
    with pytest.raises(ProofError):
        ProofBundle.from_json({**data, "proof": ["0x1234"]})
    with pytest.raises(ProofError):
        ProofBundle.from_json([1, 2])
    tampered = {**data, "leaf": {**data["leaf"], "index": 3}, "leaf_hash": None}
    assert not ProofBundle.from_json(tampered).proves()


# Version 2 (a record's bundle): the record's canonical content, and the bundle's JSON.
RECORD_CONTENT = {"uscc": "91350100M000100Y43", "kind": "food_business", "number": "JY13101100000001",
                  "data": {"items": "热食类食品制售"}, "valid_from": None, "valid_until": 1924905600}
RECORD_CONTENT_SHA256 = "c64e24ab49a710ad90c687fed7fce866dd16b084e330ef506066ba9795df169b"
RECORD_BUNDLE_V2 = {
    "version": 2, "record": {"category": "business_licence"},
    "leaf": {"content_sha256": "0x" + "02" * 32, "entity": "0x" + bytes(range(32)).hex(),
             "material_type": "business_licence", "material_version": 1, "valid_until": 0, "index": 2,
             "salt": "0x" + "66" * 32},
    "leaf_hash": "0x" + TREE_LEAVES[2].hash().hex(), "proof": ["0x" + p for p in PROOF_OF_2], "root": "0x" + TREE_ROOT,
    "anchor": {"chain_id": 1, "contract": "0x" + "11" * 20, "tx_hash": "0x" + "22" * 32, "block_number": 7},
    "content_sm3": None,
}


def test_record_bundle_vectors():
    assert record_content_sha256(**RECORD_CONTENT).hex() == RECORD_CONTENT_SHA256
    assert RECORD_CONTENT_SHA256 != record_content_sha256(**{**RECORD_CONTENT, "number": "JY2"}).hex()
    bundle = ProofBundle.from_json(RECORD_BUNDLE_V2)
    assert bundle.version == 2 and bundle.category == "business_licence" and bundle.proves()
    assert bundle.to_json() == RECORD_BUNDLE_V2  # byte for byte the same JSON tree
    assert bundle.leaf == TREE_LEAVES[2]  # the leaf and the tree are version 1's
    for bad in ({"category": ""}, {"category": "x" * 33}, {"category": 7}, None):
        with pytest.raises(ProofError):
            ProofBundle.from_json({**RECORD_BUNDLE_V2, "record": bad})


def test_the_contract_accepts_our_proofs(evm, tmp_path):
    notary = load_or_create(tmp_path / "n.eth")
    evm.fund(notary.address, 10**20)
    record, _ = deploy(evm, notary, tmp_path, grants={"NOTARY_ROLE": [notary.address]})
    ledger = QiyemaLedger(evm, record)
    leaves = [leaf.hash() for leaf in TREE_LEAVES]
    tree = MerkleTree(leaves)
    evm.wait(ledger.send_anchor(notary, tree.root, len(leaves)))
    for i in (0, 2, 4):
        ledger.revoke_leaf(notary, tree.root, leaves[i], tree.proof(i), "test")
        assert ledger.is_leaf_revoked(tree.root, leaves[i])
    assert not ledger.is_leaf_revoked(tree.root, leaves[1])


def test_the_verifiers_notary_role_is_the_contracts(evm):
    import tempfile
    from pathlib import Path

    from chain.compile import artifact
    from chain.deploy import deploy
    from chain.keys import load_or_create
    from chain.material_verify import NOTARY_ROLE

    with tempfile.TemporaryDirectory() as tmp:
        governor = load_or_create(Path(tmp) / "g.eth")
        evm.fund(governor.address, 10**20)
        record, _ = deploy(evm, governor, Path(tmp))
        contract = evm.contract(record.address, artifact().abi)
        assert evm.call(contract.functions.NOTARY_ROLE()) == NOTARY_ROLE


def test_the_leaf_encoding_is_abi_encode_and_out_of_range_numbers_are_refused():
    from eth_abi import encode
    from eth_utils import keccak

    from chain.proof import LEAF_DOMAIN, LeafInput, ProofError

    leaf = LeafInput(b"\x01" * 32, b"\x02" * 32, "lease_contract", 3, 2**64 - 1, 2**32 - 1, b"\x03" * 32)
    expected = keccak(keccak(encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "bytes32"],
        [LEAF_DOMAIN, leaf.content_sha256, leaf.entity, b"lease_contract".ljust(32, b"\0"), 3, 2**64 - 1,
         2**32 - 1, leaf.salt])))
    assert leaf.hash() == expected
    for field, value in (("material_version", 2**32), ("valid_until", 2**64), ("index", -1)):
        bad = LeafInput(**{**leaf.__dict__, field: value})
        with pytest.raises(ProofError):
            bad.hash()


# Version 3 (the gm profile): the same leaves and tree with SM3 (also in docs/proof-format.md).
LEAF_VECTOR_SM3 = "2620addecb9648215c25bd5ce67ded88a3105ef72bd2f2b307daf7f84232d9a0"
TREE_ROOT_SM3 = "b04970267484fb3c549c42dedfcb7834056f0d00e7b55455ebed3a52cbf5172b"
PROOF_OF_2_SM3 = ["010ecbe01b58c72613892d42687244eda90f6c1090a88a77aaf30557f1337c8e",
                  "c83bb71e72e41cf63feadfe65dae9429a6dad56cdaa1f830a9c7fdb37a26c655",
                  "b60c19879e34066a25dcf0c8f653c2db660cc180697d420261517d38d2ab741a"]
PROOF_OF_4_SM3 = ["8eb408fdd7a2d7a054430993a902dcb313149258a592836bd04090e2b7ea3c31"]


def _openssl_sm3(data: bytes) -> bytes:
    # A second implementation (OpenSSL through `cryptography`) beside GmSSL's, which proof.py uses.
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def test_sm3_vectors_and_a_second_implementation():
    assert LEAF_VECTOR.hash("sm3").hex() == LEAF_VECTOR_SM3
    fields = (b"qiyema.leaf.v1".ljust(32, b"\0") + LEAF_VECTOR.content_sha256 + LEAF_VECTOR.entity
              + b"lease_contract".ljust(32, b"\0") + (1).to_bytes(32, "big") + (1893456000).to_bytes(32, "big")
              + (0).to_bytes(32, "big") + LEAF_VECTOR.salt)
    assert _openssl_sm3(_openssl_sm3(fields)).hex() == LEAF_VECTOR_SM3
    tree = MerkleTree([leaf.hash("sm3") for leaf in TREE_LEAVES], "sm3")
    assert tree.root.hex() == TREE_ROOT_SM3
    assert [p.hex() for p in tree.proof(2)] == PROOF_OF_2_SM3
    assert [p.hex() for p in tree.proof(4)] == PROOF_OF_4_SM3
    a, b = sorted((bytes.fromhex(PROOF_OF_2_SM3[0]), TREE_LEAVES[2].hash("sm3")))
    assert tree.layers[1][1] == _openssl_sm3(a + b)  # sorted pair, as keccak's
    # Keccak's tree and SM3's share nothing: neither root proves the other's leaves.
    assert fold(TREE_LEAVES[2].hash(), tree.proof(2), "sm3") != tree.root
    assert fold(TREE_LEAVES[2].hash("sm3"), tree.proof(2)) != tree.root


@pytest.mark.parametrize("category", [None, "food"])
def test_a_version_3_bundle_names_sm3_and_refuses_to_be_read_as_another(category):
    tree = MerkleTree([leaf.hash("sm3") for leaf in TREE_LEAVES], "sm3")
    bundle = ProofBundle(TREE_LEAVES[2], tree.proof(2), tree.root, Anchor(1, "0x" + "11" * 20, "0x" + "22" * 32, 7),
                         category=category, digest="sm3")
    data = json.loads(bundle.dumps())
    assert data["version"] == 3 and data["hash"] == "sm3" and data["leaf_hash"] == "0x" + TREE_LEAVES[2].hash("sm3").hex()
    assert ("record" in data) == (category is not None)
    again = ProofBundle.from_json(data)
    assert again == bundle and again.proves() and again.category == category
    for broken in ({**data, "hash": "keccak256"}, {k: v for k, v in data.items() if k != "hash"},
                   {**data, "version": 2 if category else 1}):
        with pytest.raises(ProofError):
            ProofBundle.from_json(broken)
    # A keccak bundle told it is SM3 is refused too.
    keccak_tree = MerkleTree([leaf.hash() for leaf in TREE_LEAVES])
    plain = json.loads(ProofBundle(TREE_LEAVES[2], keccak_tree.proof(2), keccak_tree.root,
                                   Anchor(1, "0x" + "11" * 20, "0x" + "22" * 32, 7)).dumps())
    with pytest.raises(ProofError):
        ProofBundle.from_json({**plain, "hash": "sm3"})
    assert ProofBundle.from_json({**plain, "hash": "keccak256"}).proves()


def test_a_gm_trust_list_says_its_profile_and_refuses_a_bundle_hashed_otherwise():
    """Trust list version 2 (gm): signed with its profile, so a verifier that pinned it refuses
    a keccak256 bundle naming its deployment (and an intl list refuses an SM3 one): never mixed."""
    from chain.material_verify import verify_material
    from chain.signers import LocalSigner
    from chain.trust import TrustedDeployment, TrustList, TrustListError

    governor = LocalSigner(bytes.fromhex("11" * 32))
    deployment = TrustedDeployment(1, "0x" + "11" * 20, "0x" + "33" * 32, 5)
    gm = TrustList(governor.address, 0, [deployment], profile="gm")
    gm.sign(governor, 1767225600)
    data = gm.to_json()
    assert data["version"] == 2 and data["profile"] == "gm"
    assert TrustList.from_json(data).check(governor.address).tree_hash == "sm3"
    for broken in ({**data, "version": 1}, {k: v for k, v in data.items() if k != "profile"}, {**data, "profile": "intl"}):
        with pytest.raises(TrustListError):
            TrustList.from_json(broken).check(governor.address)
    intl = TrustList(governor.address, 0, [deployment])
    intl.sign(governor, 1767225600)
    assert intl.to_json()["version"] == 1 and "profile" not in intl.to_json()
    assert intl.check(governor.address).tree_hash == "keccak256"

    anchor = Anchor(1, "0x" + "11" * 20, "0x" + "22" * 32, 7)
    for digest, trust_list in (("keccak256", gm), ("sm3", intl)):
        tree = MerkleTree([leaf.hash(digest) for leaf in TREE_LEAVES], digest)
        bundle = ProofBundle(TREE_LEAVES[2], tree.proof(2), tree.root, anchor, digest=digest)
        verdict = verify_material(bundle, content_sha256=TREE_LEAVES[2].content_sha256, client=None,
                                  trust=trust_list.check(governor.address))
        assert verdict.status.value == "INVALID"
        assert [(c.name, c.reason) for c in verdict.checks if c.status.value == "INVALID"] == [("anchor", "bundle_profile")]


def test_every_leaf_field_is_accepted_to_its_last_value_and_refused_one_beyond():
    """The bounds of the frozen leaf encoding, each side of each edge: uint32 version and index,
    uint64 validity, 32-byte words and a type code of at most 32 ASCII characters."""
    base = dict(LEAF_VECTOR.__dict__)
    for field, last, beyond in (("material_version", 2**32 - 1, 2**32), ("index", 2**32 - 1, 2**32),
                                ("valid_until", 2**64 - 1, 2**64), ("material_type", "t" * 32, "t" * 33)):
        assert len(LeafInput(**{**base, field: last}).hash()) == 32
        with pytest.raises(ProofError) as info:
            LeafInput(**{**base, field: beyond}).hash()
        assert info.value.code in ("leaf_field", "material_type"), field
    for field in ("material_version", "index", "valid_until"):
        assert len(LeafInput(**{**base, field: 0}).hash()) == 32
        with pytest.raises(ProofError):
            LeafInput(**{**base, field: -1}).hash()
    for field in ("content_sha256", "entity", "salt"):
        for wrong in (b"\1" * 31, b"\1" * 33, b""):
            with pytest.raises(ProofError) as info:
                LeafInput(**{**base, field: wrong}).hash()
            assert info.value.code == "leaf_field"


def test_a_bundle_is_refused_for_each_malformed_part_with_its_code():
    data = json.loads(ProofBundle.from_json(RECORD_BUNDLE_V2).dumps())
    assert ProofBundle.from_json({**data, "record": {"category": "c" * 32}}).category == "c" * 32
    for version in (0, 4, "2", None):
        with pytest.raises(ProofError) as info:
            ProofBundle.from_json({**data, "version": version})
        assert info.value.code == "bundle_version"
    bad_parts = [{"record": {"category": "食品经营"}}, {"record": {"category": "c" * 33}}, {"record": "food"},
                 {"root": "0x" + "00" * 31}, {"root": "0x" + "00" * 33}, {"proof": ["0x" + "00" * 33]},
                 {"proof": "0x00"}, {"leaf": {**data["leaf"], "index": "two"}}, {"anchor": {"chain_id": 1}},
                 {"hash": "sm3"}, {"hash": "sha256"}]
    for part in bad_parts:
        with pytest.raises(ProofError) as info:
            ProofBundle.from_json({**data, **part})
        assert info.value.code == "bundle_malformed", part
    without_leaf_hash = {k: v for k, v in data.items() if k != "leaf_hash"}
    assert ProofBundle.from_json(without_leaf_hash).proves()  # the hash is computed, not trusted
    sm3_of_file = "0x" + "5a" * 32
    again = ProofBundle.from_json({**data, "content_sm3": sm3_of_file})
    assert again.content_sm3 == bytes.fromhex("5a" * 32) and again.to_json()["content_sm3"] == sm3_of_file
    assert ProofBundle.from_json(data).to_json()["content_sm3"] is None


@pytest.mark.parametrize("digest", ["keccak256", "sm3"])
def test_a_pair_is_hashed_in_sorted_order_and_an_odd_node_carried_up_unchanged(digest):
    from chain.proof import _HASH, hash_pair

    a, b = b"\x01" * 32, b"\x02" * 32
    assert hash_pair(a, b, digest) == hash_pair(b, a, digest) == _HASH[digest](a + b)
    leaves = [bytes([i]) * 32 for i in range(1, 4)]
    tree = MerkleTree(leaves, digest)
    assert tree.layers[1] == [hash_pair(leaves[0], leaves[1], digest), leaves[2]]
    assert tree.proof(2) == [tree.layers[1][0]] and fold(leaves[2], tree.proof(2), digest) == tree.root
    assert MerkleTree([leaves[0]], digest).root == leaves[0] and MerkleTree([leaves[0]], digest).proof(0) == []
    with pytest.raises(ProofError) as info:
        MerkleTree([], digest)
    assert info.value.code == "empty_batch"


def test_a_refused_bundle_says_what_is_wrong_in_words_a_bank_can_pass_on():
    data = json.loads(ProofBundle.from_json(RECORD_BUNDLE_V2).dumps())
    material = {k: v for k, v in data.items() if k != "record"} | {"version": 1}
    cases = [([1], "bundle_malformed", "a proof bundle is a JSON object"),
             ({**data, "version": 7}, "bundle_version", "unsupported proof bundle version 7"),
             ({**data, "record": {"category": ""}}, "bundle_malformed",
              "a record's bundle (version 2) names its category: record.category, 1-32 ASCII characters"),
             ({**material, "record": {"category": "food"}}, "bundle_malformed",
              "a material's bundle (version 1) has no record part"),
             ({**data, "hash": "sm3"}, "bundle_malformed", "a version-2 bundle is hashed with keccak256, not 'sm3'")]
    for bundle, code, words in cases:
        with pytest.raises(ProofError) as refused:
            ProofBundle.from_json(bundle)
        assert (refused.value.code, refused.value.message) == (code, words)
