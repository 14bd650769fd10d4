"""Proof format, versions 1, 2 and 3 (frozen): salted leaves, the Merkle tree, proof bundles.

No I/O. Consensus-critical: a change here needs a new version and a new spec section in
docs/proof-format.md; the test vectors in tests/chain/test_proof.py pin both versions.

Version 1 is a material's bundle. Version 2 is a record's (contract 1.3.0 and later): the same
leaf, tree and fields, plus `record.category`, the category whose issuer role the batch's
anchorer must have held, and the canonical form of a record's content (`record_content_sha256`);
its status is read on chain by (root, index), not by the leaf. Version 3 is the gm profile's
(国密): either bundle with SM3 in place of keccak256 everywhere in the leaf and the tree, and
`"hash": "sm3"` naming it; the root is anchored as the same bytes32. The contract computes no
SM3, so an SM3 leaf is revoked by its index (a bit of the batch's bitmap, which the leaf's own
`index` field binds it to), never by a proof the contract would have to check.

Leaf (double keccak, as OpenZeppelin's StandardMerkleTree, so an inner node is never a leaf):
    keccak256(keccak256(abi.encode(
        bytes32 "qiyema.leaf.v1", bytes32 content_sha256, bytes32 entity, bytes32 material_type,
        uint32 material_version, uint64 valid_until, uint32 index, bytes32 salt)))
`entity` is the enterprise's chain key (a domain-tagged hash of its USCC), `material_type` the
ASCII type code right-padded, `valid_until` unix seconds (0: no end), `index` the leaf's
position in its batch (so the on-chain revocation bit a verifier reads is its own), `salt` 32
random bytes (so nobody can confirm a guessed document or USCC from the chain).

Tree: leaves at positions 0..n-1; each level pairs neighbours with commutative keccak256
(sorted pair, OpenZeppelin MerkleProof); an odd last node is carried up unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

from sha3 import keccak_256

from .errors import InputError

VERSION = 1  # a material's bundle
RECORD_VERSION = 2  # a record's bundle: version 1 and the record's category
SM3_VERSION = 3  # either of them hashed with SM3 (the gm profile), `"hash": "sm3"` in it
KECCAK, SM3 = "keccak256", "sm3"
HASHES = (KECCAK, SM3)
LEAF_DOMAIN = b"qiyema.leaf.v1".ljust(32, b"\0")


class ProofError(InputError):
    """A proof bundle that cannot be read."""


def _b32(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > 32:
        raise ProofError("material_type", "a material type code has at most 32 ASCII characters")
    return raw.ljust(32, b"\0")


def record_content_sha256(uscc: str, kind: str, number: str | None, data: dict, valid_from: int | None,
                          valid_until: int | None) -> bytes:
    """SHA-256 of a record's canonical JSON: these six keys, sorted, no spaces, UTF-8 (a leaf's
    `content_sha256` for a record)."""
    canonical = json.dumps({"uscc": uscc, "kind": kind, "number": number, "data": data, "valid_from": valid_from,
                            "valid_until": valid_until}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True)
class LeafInput:
    content_sha256: bytes
    entity: bytes
    material_type: str
    material_version: int
    valid_until: int
    index: int
    salt: bytes

    def hash(self, digest: str = KECCAK) -> bytes:
        # Every field is one static 32-byte word, so abi.encode is their concatenation (the
        # vectors in tests/chain/test_proof.py pin the result).
        for name in ("content_sha256", "entity", "salt"):
            if len(getattr(self, name)) != 32:
                raise ProofError("leaf_field", f"{name} must be 32 bytes")
        if not (0 <= self.material_version < 1 << 32 and 0 <= self.index < 1 << 32 and 0 <= self.valid_until < 1 << 64):
            raise ProofError("leaf_field", "material_version and index are uint32, valid_until a uint64")
        h = _HASH[digest]
        inner = h(b"".join((LEAF_DOMAIN, self.content_sha256, self.entity, _b32(self.material_type),
                            self.material_version.to_bytes(32, "big"), self.valid_until.to_bytes(32, "big"),
                            self.index.to_bytes(32, "big"), self.salt)))
        return h(inner)


def keccak(data: bytes) -> bytes:
    # pysha3's C keccak: a verification hashes a dozen times per leaf, and eth_utils' keccak
    # (through pycryptodome) costs eight times as much per call.
    return keccak_256(data).digest()


def sm3(data: bytes) -> bytes:
    from .crypto_profile import sm3 as gm_sm3  # GmSSL, loaded by a gm deployment only

    return gm_sm3(data)


_HASH = {KECCAK: keccak, SM3: sm3}


def hash_pair(a: bytes, b: bytes, digest: str = KECCAK) -> bytes:
    return _HASH[digest](a + b) if a < b else _HASH[digest](b + a)


class MerkleTree:
    def __init__(self, leaves: list[bytes], digest: str = KECCAK):
        if not leaves:
            raise ProofError("empty_batch", "a batch needs at least one leaf")
        self.layers = [list(leaves)]
        while len(self.layers[-1]) > 1:
            prev = self.layers[-1]
            self.layers.append([hash_pair(prev[i], prev[i + 1], digest) if i + 1 < len(prev) else prev[i]
                                for i in range(0, len(prev), 2)])

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    def proof(self, index: int) -> list[bytes]:
        path = []
        for layer in self.layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                path.append(layer[sibling])
            index >>= 1
        return path


def fold(leaf: bytes, proof: list[bytes], digest: str = KECCAK) -> bytes:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling, digest)
    return node


@dataclass(frozen=True)
class Anchor:
    chain_id: int
    contract: str
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class ProofBundle:
    """Everything an independent verifier needs, apart from the file and a chain node."""

    leaf: LeafInput
    proof: list[bytes]
    root: bytes
    anchor: Anchor
    content_sm3: bytes | None = None  # informational, for 国密 deployments; not in the leaf
    category: str | None = None  # a record's bundle (version 2): its category; None for a material
    digest: str = KECCAK  # the leaf's and the tree's hash: sm3 under the gm profile (version 3)

    @property
    def version(self) -> int:
        if self.digest == SM3:
            return SM3_VERSION
        return RECORD_VERSION if self.category is not None else VERSION

    def to_json(self) -> dict:
        leaf = asdict(self.leaf)
        for k in ("content_sha256", "entity", "salt"):
            leaf[k] = "0x" + leaf[k].hex()
        record = {"record": {"category": self.category}} if self.category is not None else {}
        return {
            "version": self.version,
            **({"hash": SM3} if self.digest == SM3 else {}),
            **record,
            "leaf": leaf,
            "leaf_hash": "0x" + self.leaf_hash.hex(),
            "proof": ["0x" + p.hex() for p in self.proof],
            "root": "0x" + self.root.hex(),
            "anchor": asdict(self.anchor),
            "content_sm3": "0x" + self.content_sm3.hex() if self.content_sm3 else None,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, data) -> "ProofBundle":
        if not isinstance(data, dict):
            raise ProofError("bundle_malformed", "a proof bundle is a JSON object")
        version = data.get("version")
        if version not in (VERSION, RECORD_VERSION, SM3_VERSION):
            raise ProofError("bundle_version", f"unsupported proof bundle version {version!r}")
        digest = SM3 if version == SM3_VERSION else KECCAK
        if (data.get("hash", KECCAK) if version != SM3_VERSION else data.get("hash")) != digest:
            raise ProofError("bundle_malformed", f"a version-{version} bundle is hashed with {digest}, "
                                                 f"not {data.get('hash')!r}")
        category = None
        if version == RECORD_VERSION or (version == SM3_VERSION and "record" in data):
            record = data.get("record")
            category = record.get("category") if isinstance(record, dict) else None
            if not isinstance(category, str) or not category or len(category.encode()) > 32 or not category.isascii():
                raise ProofError("bundle_malformed", "a record's bundle (version 2) names its category: "
                                                     "record.category, 1-32 ASCII characters")
        elif "record" in data:
            raise ProofError("bundle_malformed", "a material's bundle (version 1) has no record part")
        try:
            hx = lambda v: bytes.fromhex(str(v).removeprefix("0x"))  # noqa: E731
            leaf_d = data["leaf"]
            leaf = LeafInput(hx(leaf_d["content_sha256"]), hx(leaf_d["entity"]), str(leaf_d["material_type"]),
                             int(leaf_d["material_version"]), int(leaf_d["valid_until"]), int(leaf_d["index"]),
                             hx(leaf_d["salt"]))
            a = data["anchor"]
            bundle = cls(leaf=leaf, proof=[hx(p) for p in data["proof"]], root=hx(data["root"]),
                         anchor=Anchor(int(a["chain_id"]), str(a["contract"]), str(a["tx_hash"]),
                                       int(a["block_number"])),
                         content_sm3=hx(data["content_sm3"]) if data.get("content_sm3") else None,
                         category=category, digest=digest)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError("bundle_malformed", f"the proof bundle is malformed: {exc}") from None
        if any(len(p) != 32 for p in bundle.proof) or len(bundle.root) != 32:
            raise ProofError("bundle_malformed", "proof nodes and root are 32 bytes each")
        leaf_hash = bundle.leaf.hash(digest)  # checks the field lengths and ranges
        stated = data.get("leaf_hash")
        if stated is not None and hx(stated) != leaf_hash:
            raise ProofError("bundle_inconsistent", "leaf_hash does not match the leaf's fields")
        return bundle

    @cached_property
    def leaf_hash(self) -> bytes:
        return self.leaf.hash(self.digest)

    def proves(self) -> bool:
        """The leaf's path leads to the root."""
        return fold(self.leaf_hash, self.proof, self.digest) == self.root
