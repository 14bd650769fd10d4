"""Who signs: one `Signer` interface over where a secp256k1 key lives.

Everything that signs — transactions (`ChainClient.send`), static codes, key sets — asks a
`Signer` for a signature over a 32-byte digest and never sees the key. Two backends:

- `LocalSigner`: the key in this process's memory, decrypted from an encrypted keystore
  (chain/keystore.py) when the service starts;
- `Pkcs11Signer`: the key inside a hardware security module (or SoftHSM2) reached through
  PKCS#11; it never leaves the module. The module signs raw ECDSA (r, s); the recovery id
  Ethereum needs is found here by recovering both candidates against the module's public key,
  and s is brought into the lower half (EIP-2), as every Ethereum node requires.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from eth_account._utils.signing import sign_transaction_dict
from eth_account.datastructures import SignedTransaction
from eth_keys import keys as eth_keys
from eth_keys.datatypes import Signature
from eth_utils import keccak
from hexbytes import HexBytes

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class Signer(ABC):
    """A secp256k1 key that signs digests and transactions; `address` is its Ethereum address."""

    address: str

    @abstractmethod
    def sign_hash(self, digest: bytes) -> Signature:
        """A recoverable signature (v 0/1, low s) over a 32-byte digest."""

    def sign_msg_hash(self, digest: bytes) -> Signature:
        # The name eth_account's transaction encoder calls on a key object.
        return self.sign_hash(digest)

    def sign_transaction(self, tx: dict) -> SignedTransaction:
        v, r, s, raw = sign_transaction_dict(self, tx)
        return SignedTransaction(raw_transaction=HexBytes(raw), hash=HexBytes(keccak(raw)), r=r, s=s, v=v)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.address})"


class LocalSigner(Signer):
    """A key held in memory (decrypted from a keystore, or a test's throwaway key)."""

    def __init__(self, private_key: bytes):
        self._key = eth_keys.PrivateKey(bytes(private_key))
        self.address = self._key.public_key.to_checksum_address()

    def sign_hash(self, digest: bytes) -> Signature:
        return self._key.sign_msg_hash(digest)

    def private_bytes(self) -> bytes:
        """The raw key: only for moving it into another keystore (`qiyema keys migrate`)."""
        return self._key.to_bytes()

    def public_key_bytes(self) -> bytes:
        return self._key.public_key.to_bytes()


class LazySigner(Signer):
    """A key whose address is known (a keystore file states it) and whose secret is opened on
    its first signature: a process pays a keystore's scrypt only for the keys it signs with."""

    def __init__(self, address: str, open_key, lock: threading.Lock):
        self.address = address
        self._open = open_key  # () -> Signer
        self._lock = lock
        self._signer: Signer | None = None

    def _key(self) -> Signer:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    signer = self._open()
                    if signer.address != self.address:
                        raise ValueError(f"the key opened for {self.address} is {signer.address}'s")
                    self._signer = signer
        return self._signer

    def sign_hash(self, digest: bytes) -> Signature:
        return self._key().sign_hash(digest)

    def private_bytes(self) -> bytes:
        return self._key().private_bytes()


class Pkcs11Signer(Signer):
    """A key that stays in a PKCS#11 token. `private` and `public` are python-pkcs11 key
    objects of one session; calls into the session are serialised (a PKCS#11 session is not
    for concurrent use)."""

    def __init__(self, private, public_point: bytes, lock: threading.Lock):
        self._private = private
        self._lock = lock
        self._public = uncompressed_point(public_point)
        self.address = public_key_address(self._public)

    def sign_hash(self, digest: bytes) -> Signature:
        from pkcs11 import Mechanism

        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        with self._lock:
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        return recoverable(raw, digest, self._public)


def recoverable(raw: bytes, digest: bytes, public_key: bytes) -> Signature:
    """The recoverable signature (v, r, low s) from a module's raw ECDSA r || s, checked to
    recover to `public_key` (X || Y): ValueError when it does not."""
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s  # low s (EIP-2); the other recovery id then matches
    public = eth_keys.PublicKey(public_key)
    for v in (0, 1):
        sig = Signature(vrs=(v, r, s))
        if sig.recover_public_key_from_msg_hash(digest) == public:
            return sig
    raise ValueError("the token's signature does not recover to its own public key")


def public_key_address(public_key: bytes) -> str:
    return eth_keys.PublicKey(public_key).to_checksum_address()


def uncompressed_point(ec_point: bytes) -> bytes:
    """The 64 bytes X || Y from a PKCS#11 CKA_EC_POINT (a DER OCTET STRING around 04 || X || Y;
    some modules give the bare point)."""
    point = bytes(ec_point)
    if len(point) == 67 and point[0] == 0x04 and point[1] == 0x41:
        point = point[2:]
    if len(point) != 65 or point[0] != 0x04:
        raise ValueError("the token's public key is not an uncompressed secp256k1 point")
    return point[1:]
