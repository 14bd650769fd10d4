"""The trust list (format versions 1 and 2, frozen): the deployments a verifier accepts as witnesses.

A proof bundle names its chain id and contract; a verifier must never take those from the thing
it is asked to verify, or anybody with a funded account could deploy a copy of the contracts
with themselves as governor and notary and anchor a forged document. So what is trusted is
pinned: the service's deployments (chain id, address, runtime-code hash, first block), signed by the governor, one document that offline verifiers pin by the governor's
address alone (docs/proof-format.md, "Trust list"). Deployments are only ever appended (an
upgrade adds one; evidence anchored on an earlier one still names it).

Version 2 is the gm profile's (国密): the same list saying `"profile": "gm"`, so a verifier that
pinned it knows the deployments build their proofs with SM3 and refuses a bundle hashed
otherwise (never mixed). Version 1 is the intl profile's (keccak256).

No I/O here: reading and writing the file is the caller's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sha3 import keccak_256

from .errors import InputError

VERSION = 1  # intl
GM_VERSION = 2  # gm: says its profile
_DOMAIN = b"\x19Qiyema TrustList v1\n"
_GM_DOMAIN = b"\x19Qiyema TrustList v2\n"
TREE_HASHES = {"intl": "keccak256", "gm": "sm3"}  # what each profile's proofs are hashed with (chain/proof.py)


class TrustListError(InputError):
    """A trust list that cannot be read or is not signed by the pinned governor."""


@dataclass(frozen=True)
class TrustedDeployment:
    chain_id: int
    address: str  # checksummed or not; compared lower-case
    code_hash: str  # 0x keccak256 of the runtime code
    first_block: int

    def as_dict(self) -> dict:
        return {"chain_id": self.chain_id, "address": self.address.lower(), "code_hash": self.code_hash.lower(),
                "first_block": self.first_block}


@dataclass
class TrustList:
    governor: str
    issued_at: int
    deployments: list[TrustedDeployment] = field(default_factory=list)
    signature: str = ""
    profile: str = "intl"

    def canonical(self) -> bytes:
        gm = self.profile == "gm"
        body = {"version": GM_VERSION if gm else VERSION, "governor": self.governor.lower(),
                "issued_at": self.issued_at, "deployments": [d.as_dict() for d in self.deployments],
                **({"profile": "gm"} if gm else {})}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> bytes:
        return keccak_256((_GM_DOMAIN if self.profile == "gm" else _DOMAIN) + self.canonical()).digest()

    def to_json(self) -> dict:
        return {**json.loads(self.canonical()), "signature": self.signature}

    @classmethod
    def from_json(cls, data) -> "TrustList":
        try:
            if not isinstance(data, dict) or data.get("version") not in (VERSION, GM_VERSION):
                raise ValueError("not a trust list of version 1 or 2")
            if (data["version"] == GM_VERSION) != (data.get("profile") == "gm"):
                raise ValueError("version 2 (and only it) says the gm profile")
            deployments = [TrustedDeployment(int(d["chain_id"]), str(d["address"]), str(d["code_hash"]),
                                             int(d["first_block"])) for d in data["deployments"]]
            return cls(governor=str(data["governor"]), issued_at=int(data["issued_at"]), deployments=deployments,
                       signature=str(data["signature"]), profile="gm" if data["version"] == GM_VERSION else "intl")
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustListError("trust_list_malformed", f"the trust list is malformed: {exc}") from None

    def with_deployment(self, deployment: TrustedDeployment) -> "TrustList":
        """This list with `deployment` appended (unsigned), or this list if it is already on it."""
        if any(d.chain_id == deployment.chain_id and d.address.lower() == deployment.address.lower()
               for d in self.deployments):
            return self
        return TrustList(self.governor, self.issued_at, [*self.deployments, deployment], profile=self.profile)

    def sign(self, governor, issued_at: int) -> None:
        """Signed by the governor's `Signer` (chain/signers.py)."""
        self.issued_at = issued_at
        self.signature = "0x" + governor.sign_hash(self.digest()).to_bytes().hex()

    def signer(self) -> str:
        from eth_keys import keys

        try:
            sig = keys.Signature(bytes.fromhex(self.signature.removeprefix("0x")))
            return sig.recover_public_key_from_msg_hash(self.digest()).to_checksum_address()
        except Exception:  # noqa: BLE001 - any malformed signature is a refusal
            raise TrustListError("trust_list_signature", "the trust list's signature is malformed") from None

    def check(self, trusted_governor: str) -> "Trust":
        """The trust this list gives, or TrustListError unless the pinned governor signed it."""
        signer = self.signer().lower()
        if signer != trusted_governor.lower() or signer != self.governor.lower():
            raise TrustListError("trust_list_signature", "the trust list is not signed by the trusted governor")
        return Trust.of(self.deployments, TREE_HASHES[self.profile])


@dataclass(frozen=True)
class Trust:
    """What a verifier accepts: a set of (chain id, contract address), whose proofs are hashed
    with `tree_hash` (keccak256, or sm3 under the gm profile)."""

    pinned: frozenset[tuple[int, str]]
    tree_hash: str = "keccak256"

    @classmethod
    def of(cls, deployments, tree_hash: str = "keccak256") -> "Trust":
        return cls(frozenset((d.chain_id, d.address.lower()) for d in deployments), tree_hash)

    def trusts(self, chain_id: int, address: str) -> bool:
        return (chain_id, address.lower()) in self.pinned
