"""The registrar keys a verifier checks static codes against: `KeyInfo`, the governor-signed
`KeySet` (format versions 1 and 2, frozen: docs/code-format.md) an inspector's device caches, and
`OfflineSource`, the trust source (codes/verify.py) that key set makes without a network. No I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from chain.crypto_profile import CryptoError, sm2_key_id

from .token import CodeFormatError, CodeToken, normalise_origin


@dataclass(frozen=True)
class KeyInfo:
    kid: int
    address: str  # under gm: the SM2 key id of `public_key` (chain/crypto_profile.py sm2_key_id)
    status: str  # "active" | "retired" (rotated out: its codes stay good) | "compromised" (its codes do not)
    public_key: bytes = b""  # X || Y; what an SM2 signature is checked against (gm only)

    def sm2_key(self) -> bytes | None:
        """The SM2 public key, if it is the key `address` names (else None: a swapped key)."""
        try:
            return self.public_key if sm2_key_id(self.public_key).lower() == self.address.lower() else None
        except CryptoError:
            return None


@dataclass
class KeySet:
    """Registrar keys for offline verification, signed by the governor. Version 1 (intl) is
    frozen; version 2 is the gm profile's: it says `"profile": "gm"` and carries each key's SM2
    public key (hex X || Y) beside its key id, and a key whose public key is not the one its id
    names makes the whole set malformed."""

    origin: str
    issued_at: int
    expires_at: int
    keys: list[KeyInfo] = field(default_factory=list)
    governor: str = ""
    signature: str = ""
    profile: str = "intl"

    def canonical(self) -> bytes:
        import json

        gm = self.profile == "gm"
        body = {"version": 2 if gm else 1, "origin": normalise_origin(self.origin), "issued_at": self.issued_at,
                "expires_at": self.expires_at, "governor": self.governor,
                "keys": [{"kid": k.kid, "address": k.address, "status": k.status,
                          **({"public_key": k.public_key.hex()} if gm else {})}
                         for k in sorted(self.keys, key=lambda k: k.kid)]}
        if gm:
            body["profile"] = "gm"
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> bytes:
        from eth_utils import keccak

        domain = b"\x19Qiyema KeySet v2\n" if self.profile == "gm" else b"\x19Qiyema KeySet v1\n"
        return keccak(domain + self.canonical())

    def to_json(self) -> dict:
        import json

        return {**json.loads(self.canonical()), "signature": self.signature}

    @classmethod
    def from_json(cls, data: dict) -> "KeySet":
        try:
            version = data.get("version")
            if version not in (1, 2) or (version == 2) != (data.get("profile") == "gm"):
                raise ValueError("unknown key set version")
            keys = [KeyInfo(int(k["kid"]), k["address"], k["status"],
                            bytes.fromhex(k["public_key"]) if version == 2 else b"") for k in data["keys"]]
            if version == 2 and any(k.sm2_key() is None for k in keys):
                raise ValueError("a key's public key is not the key its id names")
            return cls(origin=data["origin"], issued_at=int(data["issued_at"]), expires_at=int(data["expires_at"]),
                       keys=keys, governor=data["governor"], signature=data["signature"],
                       profile="gm" if version == 2 else "intl")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CodeFormatError("keyset_malformed", f"the key set is malformed: {exc}") from None

    def sign(self, governor) -> None:
        """Signed by the governor's `Signer` (chain/signers.py)."""
        self.signature = "0x" + governor.sign_hash(self.digest()).to_bytes().hex()

    def check(self, trusted_governor: str, now: int) -> None:
        """Raise CodeFormatError unless signed by `trusted_governor` and not expired."""
        from eth_keys import keys

        try:
            sig = keys.Signature(bytes.fromhex(self.signature.removeprefix("0x")))
            signer = sig.recover_public_key_from_msg_hash(self.digest()).to_checksum_address()
        except Exception:  # noqa: BLE001 - any malformed signature is a refusal
            raise CodeFormatError("keyset_signature", "the key set's signature is malformed") from None
        if signer.lower() != trusted_governor.lower() or signer.lower() != self.governor.lower():
            raise CodeFormatError("keyset_signature", "the key set is not signed by the trusted governor")
        if now > self.expires_at:
            raise CodeFormatError("keyset_expired", "the cached key set has expired; refresh it when online")


class OfflineSource:
    """What an inspector's device knows without a network: a verified key set."""

    offline = True

    def __init__(self, keyset: KeySet, trusted_governor: str, now: int | None = None):
        keyset.check(trusted_governor, int(time.time()) if now is None else now)
        self.origin = keyset.origin
        self.profile = keyset.profile
        self._keys = {k.kid: k for k in keyset.keys}

    def static_key(self, kid: int) -> KeyInfo | None:
        return self._keys.get(kid)

    def registrar_term(self, address: str) -> str | None:
        return "keyset"  # asked only once the signature is shown to be by a key of the key set

    def enterprise_signer(self, uscc: str):
        return False

    def enterprise_public_key(self, uscc: str):
        return None  # never asked: the chain's answer (enterprise_signer) is not known offline

    def enterprise(self, uscc: str):
        return False

    def use_nonce(self, token: CodeToken, now: int):
        return None
