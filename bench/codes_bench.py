"""Code benchmarks: renders per second (SVG, PNG), scans per second, verification latency.

    .venv/bin/python -m bench.codes_bench [--n 2000] [--profile gm]

`--profile gm`: the codes are SM2 (format version 2) and the key set carries SM2 public keys; the
offline verification is then an SM2 verification through GmSSL (each code once: no cache hit).

Runs on one core (the process is pinned to CPU 0 where the OS allows it).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import time

from PIL import Image

from chain.crypto_profile import Sm2Signer
from chain.signers import LocalSigner
from codes import render, token
from codes.scan import scan
from codes.uscc import generate
from codes.keyset import KeyInfo, KeySet, OfflineSource
from codes.verify import verify

ORIGIN = "https://qiyema.example.gov.cn"
KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
GOVERNOR_KEY = bytes.fromhex("11" * 32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--profile", choices=("intl", "gm"), default="intl")
    args = ap.parse_args()
    signer = Sm2Signer.generate() if args.profile == "gm" else LocalSigner(KEY)
    public_key = signer.public_key if args.profile == "gm" else b""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    rng = random.Random(1)
    companies = [(generate(rng), f"上海杨浦{i:05d}智能科技发展有限公司") for i in range(args.n)]
    t = time.perf_counter()
    urls = [token.static_code(ORIGIN, u, 7, signer) for u, _ in companies]
    sign_rate = args.n / (time.perf_counter() - t)
    versions = {render.qr_version(u) for u in urls}

    t = time.perf_counter()
    for url, (uscc, name) in zip(urls, companies):
        render.render_svg(url, name, uscc)
    svg_rate = args.n / (time.perf_counter() - t)

    n_png = max(1, args.n // 4)
    t = time.perf_counter()
    pngs = [render.render_png(url, name, uscc) for url, (uscc, name) in zip(urls[:n_png], companies[:n_png])]
    png_rate = n_png / (time.perf_counter() - t)

    # Scans: PNG renders decoded from memory, and simulated photos (rotated, smaller, JPEG 60).
    images = [Image.open(io.BytesIO(p)) for p in pngs[:200]]
    for im in images:
        im.load()
    t = time.perf_counter()
    for im in images:
        scan(im)
    scan_rate = len(images) / (time.perf_counter() - t)
    photos = []
    for p in pngs[:100]:
        im = Image.open(io.BytesIO(p)).convert("RGB")
        im = im.resize((im.width // 2, im.height // 2)).rotate(15, expand=True, fillcolor=(120, 120, 120))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=60)
        photo = Image.open(io.BytesIO(buf.getvalue()))
        photo.load()
        photos.append(photo)
    t = time.perf_counter()
    decoded = sum(1 for ph in photos if scan(ph))
    photo_rate = len(photos) / (time.perf_counter() - t)

    now = int(time.time())
    governor = LocalSigner(GOVERNOR_KEY)
    ks = KeySet(origin=ORIGIN, issued_at=now, expires_at=now + 3600, keys=[KeyInfo(7, signer.address, "active", public_key)],
                governor=governor.address, profile=args.profile)
    ks.sign(governor)
    source = OfflineSource(ks, ks.governor)
    latencies = []
    for url in urls:
        t = time.perf_counter()
        v = verify(url, source, now)
        latencies.append((time.perf_counter() - t) * 1000)
        assert v.facts["genuine"] == "VALID", v  # offline: genuine; the standing is the service's to say
    latencies.sort()
    print(f"profile {args.profile}: codes signed with {'SM2' if args.profile == 'gm' else 'secp256k1'}")
    print(f"static code QR versions (level M, 29-char host): {sorted(versions)}")
    print(f"sign       : {sign_rate:8.0f} codes/s (one core)")
    print(f"render SVG : {svg_rate:8.0f} codes/s (one core, {args.n} codes)")
    print(f"render PNG : {png_rate:8.0f} codes/s (one core, {n_png} codes)")
    print(f"scan PNG   : {scan_rate:8.0f} scans/s (clean renders, {len(images)})")
    print(f"scan photo : {photo_rate:8.0f} scans/s (rotated 15°, half size, JPEG 60; {decoded}/{len(photos)} decoded)")
    print(f"verify offline: median {statistics.median(latencies):.3f} ms, p99 {latencies[int(0.99 * (len(latencies) - 1))]:.3f} ms")


if __name__ == "__main__":
    main()
