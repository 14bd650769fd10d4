"""Typed access to the deployed Qiyema contract: enterprise registry and anchor ledger."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

from eth_utils import keccak

from .client import ChainClient, Receipt
from .compile import artifact
from .deploy import Deployment
from .signers import Signer


class EnterpriseStatus(enum.IntEnum):
    """Mirrors IEnterpriseRegistry.EnterpriseStatus; the values are the contract's."""

    NONE = 0
    ACTIVE = 1  # 存续
    ABNORMAL = 2  # 经营异常
    REVOKED = 3  # 吊销
    DEREGISTERED = 4  # 注销


class RecordStatus(enum.IntEnum):
    """Mirrors IRecordRegistry.RecordStatus."""

    NONE = 0
    VALID = 1
    SUSPENDED = 2
    REVOKED = 3


@dataclass(frozen=True)
class OnChainRecord:
    category: str
    status: RecordStatus
    issued_at: int


@dataclass(frozen=True)
class OnChainEnterprise:
    status: EnterpriseStatus
    registered_at: int
    code_signer: str


@dataclass(frozen=True)
class OnChainAnchor:
    anchorer: str
    leaf_count: int
    anchored_at: int
    anchored_block: int


@dataclass(frozen=True)
class RoleTerm:
    """IRoleRegistry.RoleTerm: one account's hold on one role, kept for ever."""

    granted_block: int  # 0: never granted
    retired_block: int  # 0: still held
    compromised_from_block: int
    compromised: bool

    @property
    def held(self) -> bool:
        return self.granted_block != 0 and self.retired_block == 0 and not self.compromised

    def held_at(self, block: int) -> bool:
        """The contract's `heldRoleAt`: granted at or before `block`, not retired before it."""
        return self.granted_block != 0 and self.granted_block <= block and (
            self.retired_block == 0 or block <= self.retired_block)

    @property
    def ended(self) -> bool:
        return self.retired_block != 0 or self.compromised

    @property
    def state(self) -> str:
        if self.granted_block == 0:
            return "never"
        return "compromised" if self.compromised else "retired" if self.retired_block else "active"


def _b32(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 32:
        raise ValueError(f"{text!r} is longer than 32 bytes")
    return raw.ljust(32, b"\0")


_ISSUER_DOMAIN = _b32("qiyema.issuer")


@lru_cache(maxsize=256)  # a few dozen categories, asked for every record a scan shows
def issuer_role(category: str) -> bytes:
    """RoleRegistry.issuerRole(category), computed here: keccak256(abi.encode(bytes32
    "qiyema.issuer", bytes32 category)), both static words."""
    return keccak(_ISSUER_DOMAIN + _b32(category))


class QiyemaLedger:
    """Reads and writes of the Qiyema contract, each write signed by the account holding its role."""

    def __init__(self, client: ChainClient, deployment: Deployment):
        self.client = client
        self.deployment = deployment
        self.contract = client.contract(deployment.address, artifact().abi)
        self._roles: dict[str, bytes] = {}

    def role(self, name: str) -> bytes:
        """A role id by constant name ("REGISTRAR_ROLE", ...) or issuer category ("issuer:permit.food")."""
        if name not in self._roles:
            if name.startswith("issuer:"):
                fn = self.contract.functions.issuerRole(_b32(name.removeprefix("issuer:")))
            else:
                fn = getattr(self.contract.functions, name)()
            self._roles[name] = self.client.call(fn)
        return self._roles[name]

    def has_role(self, name: str, account: str) -> bool:
        return self.client.call(self.contract.functions.hasRole(self.role(name), account))

    def grant_role(self, governor: Signer, name: str, account: str) -> Receipt | None:
        """Grant a role unless the account holds it already (then None: nothing sent)."""
        if self.has_role(name, account):
            return None
        return self.client.transact(governor, self.contract.functions.grantRole(self.role(name), account))

    def revoke_role(self, governor: Signer, name: str, account: str) -> Receipt | None:
        """Retire an account from a role (routine: what it wrote while it held the role stays
        good) unless it no longer holds it (then None: nothing sent)."""
        if not self.has_role(name, account):
            return None
        return self.client.transact(governor, self.contract.functions.revokeRole(self.role(name), account))

    def designate_successor(self, governor: Signer, account: str, successor: str) -> Receipt | None:
        """Name `successor` the next key of the writer `account` (a rotation); done once, so a
        rotation run again after a crash sends nothing. A different successor already named
        reverts on chain (InvalidSuccessor)."""
        if self.successor_of(account).lower() == successor.lower():
            return None
        return self.client.transact(governor, self.contract.functions.designateSuccessor(account, successor))

    def successor_of(self, account: str) -> str:
        return self.client.call(self.contract.functions.successorOf(account))

    def role_term(self, name: str, account: str) -> RoleTerm:
        granted, retired, compromised_from, compromised = self.client.call(
            self.contract.functions.roleTerm(self.role(name), account))
        return RoleTerm(granted, retired, compromised_from, compromised)

    def declare_compromised(self, governor: Signer, name: str, account: str, from_block: int,
                            reason_code: str = "") -> Receipt:
        """Declare `account`'s key in role `name` compromised from `from_block` (0: everything it
        ever wrote); the role is revoked in the same transaction."""
        return self.client.transact(governor, self.contract.functions.declareCompromised(
            self.role(name), account, from_block, _b32(reason_code)))

    # enterprise registry ----------------------------------------------------------------
    def send_register(self, registrar: Signer, uscc_key: bytes, code_signer: str | None = None) -> str:
        signer = code_signer or "0x" + "00" * 20
        return self.client.send(registrar, self.contract.functions.register(uscc_key, signer))

    def send_register_batch(self, registrar: Signer, uscc_keys: list[bytes]) -> str:
        # A fixed gas limit skips an estimate per batch: ~25k per entry plus margin.
        return self.client.send(registrar, self.contract.functions.registerBatch(uscc_keys),
                                gas=60_000 + 30_000 * len(uscc_keys))

    def send_set_status(self, registrar: Signer, uscc_key: bytes, status: EnterpriseStatus,
                        reason_code: str = "") -> str:
        return self.client.send(
            registrar, self.contract.functions.setStatus(uscc_key, int(status), _b32(reason_code))
        )

    def send_rotate_code_signer(self, registrar: Signer, uscc_key: bytes, signer: str) -> str:
        return self.client.send(registrar, self.contract.functions.rotateCodeSigner(uscc_key, signer))

    def enterprise(self, uscc_key: bytes) -> OnChainEnterprise:
        status, registered_at, signer = self.client.call(self.contract.functions.enterpriseOf(uscc_key))
        return OnChainEnterprise(EnterpriseStatus(status), registered_at, signer)

    def statuses(self, uscc_keys: list[bytes]) -> list[EnterpriseStatus]:
        return [EnterpriseStatus(s) for s in self.client.call(self.contract.functions.statusesOf(uscc_keys))]

    def enterprise_count(self) -> int:
        return self.client.call(self.contract.functions.enterpriseCount())

    # anchor ledger ------------------------------------------------------------------------
    def anchor(self, notary: Signer, root: bytes, leaf_count: int) -> Receipt:
        return self.client.transact(notary, self.contract.functions.anchor(root, leaf_count))

    def send_anchor(self, notary: Signer, root: bytes, leaf_count: int) -> str:
        return self.client.send(notary, self.contract.functions.anchor(root, leaf_count))

    def revoke_leaf(self, notary: Signer, root: bytes, leaf: bytes, proof: list[bytes],
                    reason_code: str = "") -> Receipt:
        """Revoke exactly `leaf` (kept by leaf: a proof binds no position)."""
        return self.client.transact(
            notary, self.contract.functions.revokeLeaf(root, leaf, proof, _b32(reason_code))
        )

    def revoke_leaves(self, notary: Signer, root: bytes, indexes: list[int], reason_code: str = "") -> Receipt:
        return self.client.wait(self.send_revoke_leaves(notary, root, indexes, reason_code))

    def send_revoke_leaves(self, notary: Signer, root: bytes, indexes: list[int], reason_code: str = "") -> str:
        return self.client.send(notary, self.contract.functions.revokeLeaves(root, indexes, _b32(reason_code)))

    def anchor_of(self, root: bytes) -> OnChainAnchor | None:
        anchorer, count, at, block = self.client.call(self.contract.functions.anchorOf(root))
        return None if at == 0 else OnChainAnchor(anchorer, count, at, block)

    def anchoring(self, root: bytes) -> tuple[int, str] | None:
        """(block number, transaction hash) of the `BatchAnchored` event of `root`, read from the
        chain's logs: for a batch whose own receipt was lost (another sender's transaction, or
        one sent before a crash, is the one the chain holds)."""
        for event in self.client.events(self.contract.events.BatchAnchored, self.deployment.block_number,
                                        argument_filters={"root": root}):
            return event["blockNumber"], event["transactionHash"].to_0x_hex()
        return None

    # record registry --------------------------------------------------------------------------
    def send_issue_records(self, issuer: Signer, category: str, roots: list[bytes], counts: list[int]) -> str:
        """Batches of records of one category (`counts[i]` records under `roots[i]`) in one
        transaction, all or none."""
        return self.client.send(issuer, self.contract.functions.issueRecordBatches(_b32(category), roots, counts))

    def send_set_record_status(self, issuer: Signer, root: bytes, index: int, status: RecordStatus,
                               reason_code: str = "") -> str:
        return self.client.send(issuer, self.contract.functions.setRecordStatus(
            root, index, int(status), _b32(reason_code)))

    def record_of(self, root: bytes, index: int) -> OnChainRecord:
        """Record `index` of batch `root` as the chain holds it (status NONE: never issued)."""
        category, status, issued_at = self.client.call(self.contract.functions.recordStatus(root, index))
        return OnChainRecord(category.rstrip(b"\0").decode("ascii", "replace"), RecordStatus(status), issued_at)

    def is_leaf_revoked(self, root: bytes, leaf: bytes) -> bool:
        return self.client.call(self.contract.functions.isLeafRevoked(root, leaf))

    def is_revoked(self, root: bytes, index: int) -> bool:
        return self.client.call(self.contract.functions.isRevoked(root, index))
