"""Keys in a PKCS#11 token (an HSM; SoftHSM2 in tests): the `KeyStore` of chain/keystore.py whose
keys never leave the module. Named keys are generated in the token on secp256k1, non-extractable,
found by label. Wrapped keys (one per enterprise) are generated in the token, wrapped there by an
AES-256 key that cannot leave it (CKM_AES_KEY_WRAP_PAD, RFC 5649) and unwrapped there into a
non-extractable session object to sign; the most recently used stay open (an LRU)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from eth_keys.datatypes import Signature

from .keystore import WRAPPED_CACHE, KeyStore, KeyStoreError, WrappedKey, check_name
from .signers import LocalSigner, Pkcs11Signer, Signer, recoverable, uncompressed_point


class Pkcs11KeyStore(KeyStore):
    """Keys in a PKCS#11 token: `module` is the library (.so), the token is found by label and
    opened with the user PIN once; one read-write session serves the process."""

    backend = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str):
        try:
            import pkcs11
        except ImportError:  # pragma: no cover - python-pkcs11 is a dependency
            raise KeyStoreError("pkcs11_missing", "python-pkcs11 is not installed") from None
        self._pkcs11 = pkcs11
        try:
            lib = pkcs11.lib(module)
        except (RuntimeError, OSError) as exc:
            raise KeyStoreError("pkcs11_module", f"cannot load the PKCS#11 module {module}: {exc}") from None
        try:
            token = lib.get_token(token_label=token_label)
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
            raise KeyStoreError("pkcs11_token", f"no single token labelled {token_label!r} in {module}") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.PinIncorrect:
            raise KeyStoreError("pkcs11_pin", f"wrong PIN for token {token_label!r}") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError("pkcs11_token", f"cannot open token {token_label!r}: {type(exc).__name__}") from None
        self._lock = threading.Lock()
        self._loaded: dict[str, Signer] = {}
        self._wrapping: dict[str, object] = {}
        # Unwrapped keys stay in the token as session objects while they are hot (LRU, under
        # `_lock` like every call into the session, so a key is never destroyed mid-signature).
        self._unwrapped: OrderedDict[bytes, object] = OrderedDict()
        self.wrapped_cache = WRAPPED_CACHE

    def _find(self, name: str, object_class):
        return list(self._session.get_objects({self._pkcs11.Attribute.LABEL: check_name(name),
                                               self._pkcs11.Attribute.CLASS: object_class}))

    def load(self, name: str) -> Signer | None:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            private, public = self._find(name, ObjectClass.PRIVATE_KEY), self._find(name, ObjectClass.PUBLIC_KEY)
            if not private or not public:
                return None
            signer = Pkcs11Signer(private[0], public[0][Attribute.EC_POINT], self._lock)
            self._loaded[name] = signer
            return signer

    def create(self, name: str, private_key: bytes | None = None) -> Signer:
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        existing = self.load(name)
        if existing is not None:
            if private_key is not None and existing.address != LocalSigner(private_key).address:
                raise KeyStoreError("key_exists", f"the token already holds another key called {name!r}")
            return existing
        curve = encode_named_curve_parameters("secp256k1")
        with self._lock:
            if private_key is None:
                params = self._session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: curve}, local=True)
                params.generate_keypair(store=True, label=name, private_template={
                    Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                    Attribute.SIGN: True})
            else:  # moving a key in: the module holds it from now on, unextractable
                point = b"\x04" + LocalSigner(private_key).public_key_bytes()
                self._session.create_object({
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: curve, Attribute.VALUE: bytes(private_key), Attribute.LABEL: name,
                    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
                self._session.create_object({
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: curve, Attribute.EC_POINT: b"\x04\x41" + point, Attribute.LABEL: name,
                    Attribute.TOKEN: True, Attribute.VERIFY: True})
        return self.load(name)

    def _wrapping_key(self, name: str, *, create: bool):
        """The token's AES-256 wrapping key `name`: it wraps and unwraps, nothing else, and
        never leaves the token."""
        from pkcs11 import Attribute, KeyType, ObjectClass

        if name in self._wrapping:
            return self._wrapping[name]
        with self._lock:
            found = self._find(name, ObjectClass.SECRET_KEY)
            if not found:
                if not create:
                    raise KeyStoreError("key_missing", f"the token has no wrapping key {name!r}")
                found = [self._session.generate_key(KeyType.AES, 256, label=name, store=True, template={
                    Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                    Attribute.WRAP: True, Attribute.UNWRAP: True, Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False, Attribute.SIGN: False, Attribute.VERIFY: False})]
            self._wrapping[name] = found[0]
            return found[0]

    def _new_wrapped_secp256k1(self, wrapping: str, owner: bytes) -> WrappedKey:
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        wrap = self._wrapping_key(wrapping, create=True)
        with self._lock:
            params = self._session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256k1")}, local=True)
            # A session key: extractable only so that the token itself can wrap it, sensitive so
            # that it never leaves in the clear; destroyed once wrapped.
            public, private = params.generate_keypair(store=False, private_template={
                Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True, Attribute.SIGN: True, Attribute.DERIVE: False})
            try:
                blob = bytes(wrap.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD))
                point = uncompressed_point(public[Attribute.EC_POINT])
            finally:
                private.destroy()
                public.destroy()
        return WrappedKey(self.backend, wrapping, point, blob)

    def wrap_data_key(self, wrapping: str, data_key: bytes, owner: bytes) -> bytes:
        """The data key enters the token as a session secret (prefixed by its owner's digest:
        AES key wrap has no associated data) and leaves only wrapped by the token's key."""
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

        wrap = self._wrapping_key(wrapping, create=True)
        with self._lock:
            secret = self._session.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                Attribute.VALUE: _owned(owner) + data_key, Attribute.TOKEN: False, Attribute.SENSITIVE: False,
                Attribute.EXTRACTABLE: True})
            try:
                return bytes(wrap.wrap_key(secret, mechanism=Mechanism.AES_KEY_WRAP_PAD))
            finally:
                secret.destroy()

    def unwrap_data_key(self, wrapping: str, blob: bytes, owner: bytes) -> bytes:
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, PKCS11Error

        wrap = self._wrapping_key(wrapping, create=False)
        with self._lock:
            try:
                secret = wrap.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, blob,
                                         mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False,
                                         template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
            except PKCS11Error:
                raise KeyStoreError("wrapped_key_invalid", "a wrapped data key does not open under its wrapping "
                                                           "key") from None
            try:
                value = bytes(secret[Attribute.VALUE])
            finally:
                secret.destroy()
        if value[:16] != _owned(owner):
            raise KeyStoreError("wrapped_key_invalid", "a wrapped data key belongs to another owner")
        return value[16:]

    def _wrapped_secp256k1_signer(self, key: WrappedKey, owner: bytes) -> Signer:
        # AES key wrap has no associated data: a wrapped key is bound to its owner by its public
        # key instead (the address the chain holds for the owner; every signature is checked
        # against it), so bytes swapped between owners sign nothing.
        self._wrapping_key(key.wrapping, create=False)
        return _WrappedPkcs11Signer(self, key)

    def sign_wrapped(self, key: WrappedKey, digest: bytes) -> bytes:
        """Raw ECDSA (r || s) by `key`, unwrapped inside the token (kept open while hot)."""
        from pkcs11 import DEFAULT, Attribute, KeyType, Mechanism, ObjectClass, PKCS11Error

        wrap = self._wrapping_key(key.wrapping, create=False)
        with self._lock:
            private = self._unwrapped.get(key.blob)
            if private is None:
                try:
                    private = wrap.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC, key.blob,
                                              mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False, template={
                                                  Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                                  Attribute.SIGN: True, Attribute.DERIVE: False,
                                                  **{a: DEFAULT for a in (Attribute.ENCRYPT, Attribute.DECRYPT,
                                                                          Attribute.WRAP, Attribute.UNWRAP,
                                                                          Attribute.VERIFY)}})
                except PKCS11Error:
                    raise KeyStoreError("wrapped_key_invalid",
                                        "a wrapped key does not open under its wrapping key") from None
                self._unwrapped[key.blob] = private
                while len(self._unwrapped) > self.wrapped_cache:
                    self._unwrapped.popitem(last=False)[1].destroy()
            else:
                self._unwrapped.move_to_end(key.blob)
            return bytes(private.sign(digest, mechanism=Mechanism.ECDSA))

    def names(self) -> list[str]:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            return sorted({o[Attribute.LABEL] for o in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                                            Attribute.TOKEN: True})})

    def close(self) -> None:
        self._session.close()


class _WrappedPkcs11Signer(Signer):
    """A wrapped key of a PKCS#11 token: each signature is made inside the token."""

    def __init__(self, store: Pkcs11KeyStore, key: WrappedKey):
        self._store, self._key = store, key
        self.address = key.address

    def sign_hash(self, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        try:
            return recoverable(self._store.sign_wrapped(self._key, digest), digest, self._key.public_key)
        except ValueError:
            raise KeyStoreError("wrapped_key_invalid", "a wrapped key is not the key its public key names") from None


def _owned(owner: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(b"qiyema.data-key.v1\x00" + owner).digest()[:16]
