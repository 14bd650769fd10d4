"""Enterprises' dynamic-code keys at a city's scale: what wrapping them in the key store costs.

    .venv/bin/python -m bench.enterprise_keys_bench [--companies 100000] [--draws 20000]
        [--custody keystore,pkcs11] [--pkcs11-companies 20000]

For each custody: the first code of every enterprise (a new key made in the store and wrapped),
then dynamic-code signatures for enterprises drawn with a Zipf distribution (s = 1.1) over all of
them, the way codes are shown (a few companies show many, most a few): signatures per second,
the share served by keys already open (the store's LRU of 4,096: hit rate named) and the cold
latency (unwrap + sign). Beside it, the scheme it replaces (a key derived from one master secret
by keccak, then signed) on the same draws. PKCS#11 runs on SoftHSM2 in a token of its own.
Every signature is checked to recover to the enterprise's address (nothing counted unchecked).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from bisect import bisect
from itertools import accumulate
from pathlib import Path

from eth_keys import keys as eth_keys
from eth_utils import keccak

from chain import keystore
from chain.keystore import FileKeyStore
from chain.pkcs11_keystore import Pkcs11KeyStore
from chain.signers import LocalSigner

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def zipf_draws(n: int, draws: int, rng: random.Random) -> list[int]:
    cdf = list(accumulate(1 / (k ** 1.1) for k in range(1, n + 1)))
    total = cdf[-1]
    return [min(bisect(cdf, rng.random() * total), n - 1) for _ in range(draws)]


def _digest(i: int) -> bytes:
    return keccak(i.to_bytes(8, "big"))


def run_store(name: str, store, companies: int, draws: list[int]) -> dict:
    owners = [f"enterprise-code-signer:{i:018d}".encode() for i in range(companies)]
    t = time.perf_counter()
    keys = [store.new_wrapped_key("enterprise-code-wrap", owner) for owner in owners]
    made = companies / (time.perf_counter() - t)
    # A fresh process: nothing open yet (the LRU filled by making them is emptied).
    if isinstance(store, FileKeyStore):
        store._wrapped = keystore._OpenKeys(keystore.WRAPPED_CACHE)  # noqa: SLF001 - a benchmark's reset
    else:
        with store._lock:
            while store._unwrapped:
                store._unwrapped.popitem()[1].destroy()
    seen: set[int] = set()
    hits, cold, checked = 0, [], 0
    t = time.perf_counter()
    for i in draws:
        key = keys[i]
        is_hit = i in seen and (isinstance(store, FileKeyStore) and store._wrapped.get(key.blob + owners[i]) is not None
                                or isinstance(store, Pkcs11KeyStore) and key.blob in store._unwrapped)
        t0 = time.perf_counter()
        signature = store.wrapped_signer(key, owners[i]).sign_hash(_digest(i))
        elapsed = time.perf_counter() - t0
        if is_hit:
            hits += 1
        else:
            cold.append(elapsed)
        seen.add(i)
        if signature.recover_public_key_from_msg_hash(_digest(i)).to_checksum_address() != key.address:
            raise SystemExit(f"{name}: a signature does not recover to its enterprise")
        checked += 1
    rate = checked / (time.perf_counter() - t)
    return {"custody": name, "companies": companies, "made_per_s": made, "signed_per_s": rate,
            "hit_rate": hits / len(draws), "cold_ms": statistics.median(cold) * 1000 if cold else 0.0}


def run_derived(companies: int, draws: list[int]) -> dict:
    """The scheme replaced: every key derived from one master secret, on every code."""
    master = secrets.token_bytes(32)
    t = time.perf_counter()
    for i in draws:
        seed = keccak(b"qiyema.enterprise-code-signer.v1" + master + f"{i:018d}".encode() + (1).to_bytes(4, "big"))
        key = eth_keys.PrivateKey((int.from_bytes(seed, "big") % (N - 1) + 1).to_bytes(32, "big"))
        signature = LocalSigner(key.to_bytes()).sign_hash(_digest(i))
        if signature.recover_public_key_from_msg_hash(_digest(i)) != key.public_key:
            raise SystemExit("derived: a signature does not recover")
    return {"custody": "derived (before)", "companies": companies, "made_per_s": float("nan"),
            "signed_per_s": len(draws) / (time.perf_counter() - t), "hit_rate": float("nan"), "cold_ms": float("nan")}


def softhsm_store(base: Path) -> Pkcs11KeyStore:
    if not os.path.exists(SOFTHSM) or not shutil.which("softhsm2-util"):
        raise SystemExit("SoftHSM2 is missing: scripts/bootstrap test installs it")
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "2468",
                    "--so-pin", "13579"], check=True, capture_output=True)
    return Pkcs11KeyStore(SOFTHSM, "bench", "2468")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--companies", type=int, default=100_000)
    ap.add_argument("--pkcs11-companies", type=int, default=20_000,
                    help="enterprises made in the token (SoftHSM2 makes about 1,000 keys/s)")
    ap.add_argument("--draws", type=int, default=20_000)
    ap.add_argument("--custody", default="keystore,pkcs11")
    args = ap.parse_args()
    rng = random.Random(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for custody in args.custody.split(","):
            if custody == "keystore":
                store = FileKeyStore(Path(tmp) / "keys", b"bench passphrase", scrypt_n=2 ** 14)
                n = args.companies
            elif custody == "pkcs11":
                store = softhsm_store(Path(tmp) / "softhsm")
                n = args.pkcs11_companies
            else:
                raise SystemExit(f"unknown custody {custody!r} (keystore, pkcs11)")
            draws = zipf_draws(n, args.draws, rng)
            rows.append(run_store(custody, store, n, draws))
            rows.append(run_derived(n, draws))
    print(f"{'custody':<18} {'companies':>9} {'keys made/s':>12} {'signed/s':>9} {'LRU hits':>9} {'cold ms':>8}")
    for r in rows:
        print(f"{r['custody']:<18} {r['companies']:>9,} {r['made_per_s']:>12,.0f} {r['signed_per_s']:>9,.0f} "
              f"{r['hit_rate']:>9.1%} {r['cold_ms']:>8.2f}")


if __name__ == "__main__":
    main()
