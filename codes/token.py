"""Code tokens (企业码), format version 1. Frozen: a change needs a new version character.

A code is a URL that any phone camera opens: `<ORIGIN>/V/<PAYLOAD>`. Everything is upper case so
the URL fits QR alphanumeric mode (5.5 bits a character); scheme and host are case-insensitive.

Static code (printed on the licence), signed by a registrar key identified by `KID`:
    PAYLOAD = "1S" USCC(18) KID(2, base32) SIG(155 decimal digits: a 64-byte EIP-2098 signature)
The signature is written in decimal because QR numeric mode packs it into 3.33 bits a digit,
which keeps a static code at QR version 6 (level M) even behind a 30-character host name.

Dynamic code (亮码, shown on a phone), signed by the enterprise's code-signing key:
    PAYLOAD = "1D" USCC(18) base32(BODY || SIG64)
    BODY    = issued_at u32 | expires_at u32 | nonce(12) | flags u8 | [scope_digest(16)]
    flags   : bit 0 single use, bit 1 carries a consent-scope digest

Signed message: b"\\x19Qiyema Code v1\\n" + origin + b"\\n" + PAYLOAD-without-signature, origin
being the lower-case "scheme://host[:port]" the code points at: a payload copied onto another
host no longer verifies. No I/O in this module.

Version "1" (the `intl` profile): SIG is a secp256k1 signature over keccak256(message), EIP-2098
compact (r, s with the recovery bit on top): the signer's address is recovered from it.
Version "2" (the `gm` profile, 国密): the same layout; SIG is SM2 r || s over the message (SM3 with
the GM/T 0009 default signer id inside, GB/T 32918.2), with b"\\x19Qiyema Code v2 SM2\\n" in front
instead. SM2 recovers no key: the verifier takes the public key the key set or the chain names
and checks the signature against it. One deployment signs with one of the two (its profile).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from eth_keys import keys
from eth_keys.exceptions import BadSignature
from sha3 import keccak_256

from chain.crypto_profile import Sm2Signer, sm2_verify_cached
from chain.errors import InputError
from chain.signers import Signer

from .uscc import UsccError, validate

VERSION = "1"  # secp256k1 over keccak256 (intl)
VERSION_SM2 = "2"  # SM2 over SM3 (gm)
SCHEMES = {VERSION: "secp256k1", VERSION_SM2: "sm2"}
STATIC = "S"
DYNAMIC = "D"
PATH = "/V/"
DOMAIN = b"\x19Qiyema Code v1\n"
DOMAIN_SM2 = b"\x19Qiyema Code v2 SM2\n"
SIG_CHARS = 155  # 64 bytes as a zero-padded decimal number
KID_MAX = 1023  # two base32 characters
FLAG_SINGLE_USE = 0x01
FLAG_SCOPE = 0x02
_BODY = struct.Struct(">II12sB")


class CodeFormatError(InputError):
    """A code (or key set) that does not parse as the frozen format says."""


@dataclass(frozen=True)
class CodeToken:
    kind: str  # "S" or "D"
    origin: str  # "https://host[:port]", lower case
    uscc: str
    signature: bytes  # 64 bytes: EIP-2098 compact (version 1) or SM2 r || s (version 2)
    message: bytes  # what was signed (version 1 signs its keccak256)
    kid: int | None = None  # static only
    issued_at: int | None = None  # dynamic only
    expires_at: int | None = None
    nonce: bytes | None = None
    single_use: bool = False
    scope_digest: bytes | None = None
    version: str = VERSION

    @property
    def is_static(self) -> bool:
        return self.kind == STATIC

    @property
    def scheme(self) -> str:
        """`secp256k1` or `sm2`: what signed it."""
        return SCHEMES[self.version]

    @property
    def message_hash(self) -> bytes:
        return keccak_256(self.message).digest()


def b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, base64.binascii.Error):
        raise CodeFormatError("code_encoding", "the code's payload is not valid base32") from None


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CodeFormatError("code_origin", f"not an http(s) origin: {origin!r}")
    host = parts.hostname.lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _kid_text(kid: int) -> str:
    if not 0 <= kid <= KID_MAX:
        raise ValueError(f"kid must be 0..{KID_MAX}")
    return _B32[kid >> 5] + _B32[kid & 31]


def _kid_value(text: str) -> int:
    if len(text) != 2 or any(c not in _B32 for c in text):
        raise CodeFormatError("code_kid", "the key id is not two base32 characters")
    return (_B32.index(text[0]) << 5) | _B32.index(text[1])


def signed_message(origin: str, unsigned_payload: str) -> bytes:
    domain = DOMAIN_SM2 if unsigned_payload[:1] == VERSION_SM2 else DOMAIN
    return domain + normalise_origin(origin).encode() + b"\n" + unsigned_payload.encode()


def _version(signer: Signer | Sm2Signer) -> str:
    return VERSION_SM2 if getattr(signer, "scheme", "") == "sm2" else VERSION


def _sign(signer: Signer | Sm2Signer, message: bytes) -> bytes:
    if isinstance(signer, Sm2Signer):
        return signer.sign_message(message)
    return compact_signature(signer, keccak_256(message).digest())


def compact_signature(signer: Signer, digest: bytes) -> bytes:
    """EIP-2098: r, then s with the recovery bit on top. The key stays in `signer` (memory or an HSM)."""
    sig = signer.sign_hash(digest)
    r, s, v = sig.r, sig.s, sig.v
    return r.to_bytes(32, "big") + ((v << 255) | s).to_bytes(32, "big")


def recover_signer(token: CodeToken) -> str:
    """The checksummed address whose key signed a version-1 token; raises CodeFormatError if
    none does."""
    if token.version != VERSION:
        raise ValueError("an SM2 signature recovers no key: check it against a public key (signed_by)")
    return _recover(token.signature, token.message_hash)


def signed_by(token: CodeToken, public_key: bytes) -> bool:
    """Whether a version-2 token's SM2 signature is by `public_key` (X || Y)."""
    if token.version != VERSION_SM2:
        raise ValueError("a version-1 token names its signer: recover it (recover_signer)")
    return sm2_verify_cached(bytes(public_key), token.message, token.signature)


@lru_cache(maxsize=32_768)
def _recover(signature: bytes, digest: bytes) -> str:
    # A pure function of the bytes, and a verifier scans the same popular codes again and again:
    # kept (bounded: ~10 MB) so a repeat scan skips the curve arithmetic (~0.1 ms).
    r = int.from_bytes(signature[:32], "big")
    vs = int.from_bytes(signature[32:], "big")
    v, s = vs >> 255, vs & ((1 << 255) - 1)
    try:
        sig = keys.Signature(vrs=(v, r, s))
        return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except (BadSignature, ValueError):
        raise CodeFormatError("code_signature", "the signature does not recover to any key") from None


def _sig_digits(sig: bytes) -> str:
    return str(int.from_bytes(sig, "big")).zfill(SIG_CHARS)


def _sig_bytes(digits: str) -> bytes:
    if not digits.isdigit() or int(digits) >= 1 << 512:
        raise CodeFormatError("code_encoding", "the code's signature is not a 155-digit number")
    return int(digits).to_bytes(64, "big")


def _url(origin: str, payload: str) -> str:
    return (normalise_origin(origin) + PATH + payload).upper()


def static_code(origin: str, uscc: str, kid: int, signer: Signer | Sm2Signer) -> str:
    unsigned = _version(signer) + STATIC + validate(uscc) + _kid_text(kid)
    sig = _sign(signer, signed_message(origin, unsigned))
    return _url(origin, unsigned + _sig_digits(sig))


def dynamic_code(origin: str, uscc: str, issued_at: int, expires_at: int, nonce: bytes, signer: Signer | Sm2Signer,
                 *, single_use: bool = False, scope_digest: bytes | None = None) -> str:
    if len(nonce) != 12:
        raise ValueError("nonce must be 12 bytes")
    if scope_digest is not None and len(scope_digest) != 16:
        raise ValueError("scope digest must be 16 bytes")
    flags = (FLAG_SINGLE_USE if single_use else 0) | (FLAG_SCOPE if scope_digest else 0)
    body = _BODY.pack(issued_at, expires_at, nonce, flags) + (scope_digest or b"")
    head = _version(signer) + DYNAMIC + validate(uscc)
    sig = _sign(signer, signed_message(origin, head + b32encode(body)))
    # The signature rides inside the same base32 run as the body.
    return _url(origin, head + b32encode(body + sig))


def parse(text: str) -> CodeToken:
    """Parse a scanned code (the URL, or the bare payload with `origin` unknown → error)."""
    raw = text.strip()
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CodeFormatError("code_not_qiyema", "this is not a Qiyema code (not an http(s) link)")
    origin = normalise_origin(raw)
    path = parts.path
    if not path.upper().startswith(PATH) or parts.query or parts.fragment:
        raise CodeFormatError("code_not_qiyema", "this is not a Qiyema code (unexpected path)")
    payload = path[len(PATH):].upper()
    if len(payload) < 2 or payload[0] not in SCHEMES:
        raise CodeFormatError("code_version", f"unknown code format version {payload[:1]!r}")
    version, kind = payload[0], payload[1]
    if kind == STATIC:
        expected = 2 + 18 + 2 + SIG_CHARS
        if len(payload) != expected:
            raise CodeFormatError("code_length", f"a static code payload has {expected} characters, not {len(payload)}")
        unsigned, sig_text = payload[:22], payload[22:]
        try:
            uscc = validate(payload[2:20])
        except UsccError as exc:
            raise CodeFormatError("code_uscc", exc.message) from None
        kid = _kid_value(payload[20:22])
        return CodeToken(kind, origin, uscc, _sig_bytes(sig_text), signed_message(origin, unsigned), kid=kid,
                         version=version)
    if kind == DYNAMIC:
        try:
            uscc = validate(payload[2:20])
        except UsccError as exc:
            raise CodeFormatError("code_uscc", exc.message) from None
        blob = b32decode(payload[20:])
        if len(blob) not in (_BODY.size + 64, _BODY.size + 16 + 64):
            raise CodeFormatError("code_length", "a dynamic code payload has the wrong length")
        body, sig = blob[:-64], blob[-64:]
        iat, exp, nonce, flags = _BODY.unpack(body[:_BODY.size])
        has_scope = bool(flags & FLAG_SCOPE)
        if has_scope != (len(body) == _BODY.size + 16) or flags & ~(FLAG_SINGLE_USE | FLAG_SCOPE):
            raise CodeFormatError("code_flags", "a dynamic code's flags do not match its length")
        unsigned = version + DYNAMIC + uscc + b32encode(body)
        return CodeToken(kind, origin, uscc, sig, signed_message(origin, unsigned), issued_at=iat, expires_at=exp,
                         nonce=nonce, single_use=bool(flags & FLAG_SINGLE_USE),
                         scope_digest=body[_BODY.size:] if has_scope else None, version=version)
    raise CodeFormatError("code_kind", f"unknown code kind {kind!r}")
