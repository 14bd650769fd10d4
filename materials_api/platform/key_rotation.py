"""Rotating and compromising the service's chain accounts (notary, registrar, an issuer
organisation's account), kept apart as the contract keeps them apart:

- `rotate`: routine. A new generation is made in the key store and written ahead (`pending`),
  granted the account's roles on chain, made active, and the old one retired (`revokeRole`):
  everything the old key wrote while it held its roles stays VALID, because verifiers judge a
  write by the role its writer held at the block it was made.
- `compromise`: the key is declared compromised from a block (`declareCompromised`): what it
  wrote from that block on verifies INVALID `key_compromised`, what it wrote before is VALID with
  the warning `signed_before_compromise` (from block 0: everything). An active key is rotated out
  first, so the service keeps writing with a new one.

Each step is idempotent: a rotation stopped half-way is carried on by running it again (the
pending generation is reused, grants already made are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.errors import ChainError
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.runtime import FUNDING_WEI, ChainContext

ROLES = {"notary": ["NOTARY_ROLE"], "registrar": ["REGISTRAR_ROLE"]}


class KeyRotationError(ServiceError):
    def __init__(self, code: str, message: str):
        super().__init__(Kind.CONFLICT, code, message)


@dataclass(frozen=True)
class Rotation:
    purpose: str
    old_address: str | None
    new_address: str
    roles: list[str]


def check_governor(chain: ChainContext) -> None:
    """The governor key in the key store must hold the governor role on this chain (else
    nothing can be granted or retired, and nothing is changed)."""
    governor = chain.governor
    if not chain.ledger.has_role("GOVERNOR_ROLE", governor.address):
        raise KeyRotationError("no_governor_key", f"the governor key in the key store ({governor.address}) does not "
                                                  "hold the governor role on this chain: nothing was changed")


def rotate(chain: ChainContext, purpose: str, roles: list[str]) -> Rotation:
    if purpose == "governor":
        raise KeyRotationError("governor_not_rotated",
                               "the governor's address is what offline verifiers trust (it signs the key set): "
                               "it is changed by a new deployment, not by rotation")
    if not roles:
        raise KeyRotationError("no_roles", f"{purpose} holds no role on chain: nothing to rotate")
    check_governor(chain)
    keys, ledger, governor = chain.keys, chain.ledger, chain.governor
    for row in keys.rows(purpose):  # a rotation stopped after its switch: finish retiring the old key
        if row.status == "retired":
            for role in roles:
                ledger.revoke_role(governor, role, row.address)
    current, new = keys.next_generation(purpose)
    try:
        chain.client.fund(new.address, FUNDING_WEI // 100, funder=chain.governor)
    except ChainError:
        pass  # a network without a faucet: the operator funds the new account (docs/operations.md)
    for role in roles:
        ledger.grant_role(governor, role, new.address)
    if current is not None:
        # What the old key wrote (a batch of records), the new key may change: the contract
        # binds a record's status to its batch's issuer or that issuer's designated successors.
        ledger.designate_successor(governor, current.address, new.address)
    keys.activate(purpose, new.address)
    if current is not None:
        for role in roles:
            ledger.revoke_role(governor, role, current.address)
    return Rotation(purpose, current.address if current else None, new.address, roles)


def compromise(chain: ChainContext, purpose: str, roles: list[str], address: str | None, from_block: int,
               reason: str = "key-compromised") -> tuple[str, Rotation | None]:
    """Declare `purpose`'s key at `address` (default: the active one) compromised from
    `from_block` in each of `roles`. Returns the address and the rotation made, if any."""
    check_governor(chain)
    keys, ledger = chain.keys, chain.ledger
    rows = {r.address.lower(): r for r in keys.rows(purpose)}
    if address is None:
        active = [r for r in rows.values() if r.status == "active"]
        if not active:
            raise KeyRotationError("unknown_key", f"{purpose} has no active key")
        address = active[0].address
    row = rows.get(address.lower())
    if row is None:
        raise KeyRotationError("unknown_key", f"{address} is not a {purpose} key of this service")
    head = chain.client.block_number()
    if from_block > head:
        raise KeyRotationError("compromise_block", f"block {from_block} is after the chain's head ({head})")
    rotation = rotate(chain, purpose, roles) if row.status in ("active", "pending") else None
    for role in roles:
        term = ledger.role_term(role, row.address)
        if term.granted_block == 0:
            continue  # never held this role: nothing it wrote under it
        if term.compromised and term.compromised_from_block <= from_block:
            continue  # declared already, from this block or earlier
        ledger.declare_compromised(chain.governor, role, row.address, from_block, reason)
    keys.mark_compromised(purpose, row.address, from_block)
    return row.address, rotation
