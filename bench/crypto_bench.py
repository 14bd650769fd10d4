"""The crypto profiles' primitives on this machine (issue 28): signatures per second with SM2
(GmSSL) beside secp256k1 (coincurve, what `intl` codes use), verification including the public-key
recovery `intl` needs, the digests, and the ciphers that seal materials at rest, per 100 KB.

    .venv/bin/python -m bench.crypto_bench [--n 3000]

Every signature made is checked before it is counted."""

from __future__ import annotations

import argparse
import hashlib
import os
import time

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

from chain.crypto_profile import AES_256_GCM, SM4_GCM, sm2_keypair, sm2_sign, sm2_verify, sm3


def _per_second(fn, n: int) -> float:
    fn(0)  # warm
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    n = ap.parse_args().n
    messages = [os.urandom(120) for _ in range(n + 1)]  # about a code's signed text
    private, public = sm2_keypair()
    sm2_signatures = [sm2_sign(private, public, m) for m in messages]
    assert all(sm2_verify(public, m, s) for m, s in zip(messages, sm2_signatures))
    secret = PrivateKey()
    digests = [keccak(m) for m in messages]
    k1_signatures = [secret.sign_recoverable(d, hasher=None) for d in digests]
    assert all(PublicKey.from_signature_and_message(s, d, hasher=None).format() == secret.public_key.format()
               for d, s in zip(digests, k1_signatures))

    rows = [
        ("SM2 sign (SM3 with Z, GmSSL)", _per_second(lambda i: sm2_sign(private, public, messages[i]), n)),
        ("SM2 verify", _per_second(lambda i: sm2_verify(public, messages[i], sm2_signatures[i]), n)),
        ("secp256k1 sign (keccak digest, coincurve)",
         _per_second(lambda i: secret.sign_recoverable(digests[i], hasher=None), n)),
        ("secp256k1 recover the signer (an intl scan)",
         _per_second(lambda i: PublicKey.from_signature_and_message(k1_signatures[i], digests[i], hasher=None), n)),
        ("SM3 of 120 bytes", _per_second(lambda i: sm3(messages[i]), n)),
        ("keccak256 of 120 bytes", _per_second(lambda i: keccak(messages[i]), n)),
        ("SHA-256 of 120 bytes", _per_second(lambda i: hashlib.sha256(messages[i]).digest(), n)),
    ]
    block, key32, nonce = os.urandom(100_000), os.urandom(32), os.urandom(12)
    rows += [
        ("AES-256-GCM seal 100 KB", _per_second(lambda i: AES_256_GCM.seal(key32, nonce, b"a", block), n // 10)),
        ("SM4-GCM seal 100 KB", _per_second(lambda i: SM4_GCM.seal(key32[:16], nonce, b"a", block), n // 10)),
    ]
    print(f"one core, {n:,} operations each (ciphers: {n // 10:,})")
    for label, rate in rows:
        print(f"{label:<46} {rate:>12,.0f} /s")


if __name__ == "__main__":
    main()
