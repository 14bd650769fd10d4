"""The contract's one-call leaf view (`IAnchorLedger.leafStatus` / `leafStatuses`), encoded and
decoded by hand: a verification is one `eth_call` and a few slices, with no contract object and
no ABI machinery per call. `read_leaf_status(es)` send the call through a `ChainClient` (its
plain JSON-RPC path, retries and circuit breaker); the rest is pure.
Test vectors (tests/chain/test_leaf_status.py) check the codec against eth_abi and the contract."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eth_utils import keccak, to_checksum_address

LEAF_STATUS = keccak(text="leafStatus(bytes32,uint256,bytes32,bytes32)")[:4]  # contract 1.6.0: with the leaf
LEAF_STATUSES = keccak(text="leafStatuses(bytes32[],uint256[],bytes32[],bytes32)")[:4]
_WORDS = 12  # every field of IAnchorLedger.LeafStatus is one static word


@dataclass(frozen=True)
class LeafStatus:
    anchorer: str | None  # None: the root was never anchored
    leaf_count: int
    anchored_at: int
    anchored_block: int
    revoked: bool
    anchorer_held_role: bool  # at the block it anchored
    anchorer_retired: bool  # since then (routine: what it anchored before stays good)
    anchorer_compromised: bool
    compromised_from_block: int  # with `anchorer_compromised`: its writes from here on are untrusted
    record_status: int  # a record's IRecordRegistry.RecordStatus (0: a material's leaf, or none)
    block_number: int  # the block the answer was read at
    block_timestamp: int

    @property
    def anchored(self) -> bool:
        return self.anchored_at != 0


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _b32(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError("a root or role is 32 bytes")
    return value


def encode_leaf_status(root: bytes, index: int, leaf: bytes, role: bytes) -> bytes:
    return LEAF_STATUS + _b32(root) + _word(index) + _b32(leaf) + _b32(role)


def encode_leaf_statuses(leaves: list[tuple[bytes, int, bytes]], role: bytes) -> bytes:
    """`leaves`: (root, index, leaf hash) each."""
    n = len(leaves)
    roots_at = 4 * 32
    indexes_at = roots_at + 32 * (1 + n)
    leaves_at = indexes_at + 32 * (1 + n)
    return b"".join([LEAF_STATUSES, _word(roots_at), _word(indexes_at), _word(leaves_at), _b32(role),
                     _word(n), *(_b32(r) for r, _, _ in leaves), _word(n), *(_word(i) for _, i, _ in leaves),
                     _word(n), *(_b32(h) for _, _, h in leaves)])


@lru_cache(maxsize=256)
def _address(word: int) -> str:
    return to_checksum_address(word.to_bytes(20, "big"))  # a few notaries anchor everything


def _status(data: bytes, at: int) -> LeafStatus:
    w = [int.from_bytes(data[at + 32 * k:at + 32 * (k + 1)], "big") for k in range(_WORDS)]
    return LeafStatus(anchorer=_address(w[0]) if w[2] else None, leaf_count=w[1], anchored_at=w[2],
                      anchored_block=w[3], revoked=bool(w[4]), anchorer_held_role=bool(w[5]),
                      anchorer_retired=bool(w[6]), anchorer_compromised=bool(w[7]), compromised_from_block=w[8],
                      record_status=w[9], block_number=w[10], block_timestamp=w[11])


def decode_leaf_status(data: bytes) -> LeafStatus:
    if len(data) != 32 * _WORDS:
        raise ValueError(f"leafStatus answered {len(data)} bytes, not {32 * _WORDS}: not a Qiyema 1.6 contract?")
    return _status(data, 0)


def decode_leaf_statuses(data: bytes) -> list[LeafStatus]:
    if len(data) < 64:
        raise ValueError("leafStatuses answered too few bytes: not a Qiyema 1.4 contract?")
    at = int.from_bytes(data[:32], "big")
    n = int.from_bytes(data[at:at + 32], "big")
    start = at + 32
    if len(data) < start + n * 32 * _WORDS:
        raise ValueError("leafStatuses answered fewer statuses than it says")
    return [_status(data, start + k * 32 * _WORDS) for k in range(n)]


def read_leaf_status(client, contract: str, root: bytes, index: int, leaf: bytes, role: bytes,
                     block: int | str = "latest") -> LeafStatus:
    return decode_leaf_status(client.eth_call(contract, encode_leaf_status(root, index, leaf, role), block))


def read_leaf_statuses(client, contract: str, leaves: list[tuple[bytes, int, bytes]], role: bytes,
                       block: int | str = "latest") -> list[LeafStatus]:
    """Many leaves in one `eth_call`, all read at one block."""
    if not leaves:
        return []
    statuses = decode_leaf_statuses(client.eth_call(contract, encode_leaf_statuses(leaves, role), block))
    if len(statuses) != len(leaves):
        raise ValueError(f"leafStatuses answered {len(statuses)} statuses for {len(leaves)} leaves")
    return statuses
