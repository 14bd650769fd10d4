"""Key custody costs: opening a keystore key at the standard scrypt cost (paid once per key per
process, at start), and signing with a key in memory against a key in a PKCS#11 token
(SoftHSM2): digests (a static code, a key set) and whole transactions, one thread and several.

    .venv/bin/python -m bench.keys_bench [--n 2000] [--threads 4]

Needs SoftHSM2 (`scripts/bootstrap test` installs it); the token lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chain.keystore import STANDARD_SCRYPT_N, FileKeyStore
from chain.pkcs11_keystore import Pkcs11KeyStore

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def _rate(label: str, fn, n: int, threads: int) -> None:
    digests = [os.urandom(32) for _ in range(n)]
    fn(digests[0])  # warm
    started = time.perf_counter()
    if threads == 1:
        times = []
        for d in digests:
            t = time.perf_counter()
            fn(d)
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
        print(f"{label:<44} {n / elapsed:>9,.0f}/s   median {statistics.median(times) * 1e3:.3f} ms")
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, digests))
        elapsed = time.perf_counter() - started
        print(f"{label:<44} {n / elapsed:>9,.0f}/s   ({threads} threads)")


def _tx(nonce_source):
    def build(_digest):
        return {"to": "0x" + "11" * 20, "value": 1, "gas": 21000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1,
                "nonce": next(nonce_source), "chainId": 31337, "type": 2}
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = FileKeyStore(tmp / "keys", b"bench passphrase")
        t = time.perf_counter()
        memory = store.create("notary")
        created = time.perf_counter() - t
        # `load` reads the address only; the key is decrypted (scrypt) at its first signature.
        t = time.perf_counter()
        loaded = FileKeyStore(tmp / "keys", b"bench passphrase").load("notary")
        read = time.perf_counter() - t
        digest = os.urandom(32)
        t = time.perf_counter()
        first = loaded.sign_hash(digest)
        opened = time.perf_counter() - t
        assert first == memory.sign_hash(digest), "the key read back signs otherwise than the one made"
        print(f"keystore, scrypt n = {STANDARD_SCRYPT_N}: create {created * 1e3:.0f} ms; load {read * 1e3:.1f} ms "
              f"(the address only); first signature {opened * 1e3:.0f} ms (scrypt and decryption, once per key "
              "per process)")

        (tmp / "tokens").mkdir()
        conf = tmp / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234",
                        "--so-pin", "5678"], check=True, capture_output=True)
        hsm = Pkcs11KeyStore(SOFTHSM, "bench", "1234").create("notary")

        for name, signer in (("memory (coincurve)", memory), ("PKCS#11 (SoftHSM2)", hsm)):
            _rate(f"sign a digest, {name}", signer.sign_hash, args.n, 1)
            _rate(f"sign a digest, {name}", signer.sign_hash, args.n, args.threads)
            nonces = iter(range(10**9))
            build = _tx(nonces)
            _rate(f"sign a transaction, {name}", lambda d, s=signer, b=build: s.sign_transaction(b(d)), args.n, 1)


if __name__ == "__main__":
    main()
