"""The 国密 and international primitives of the crypto profiles: the published vectors, and each
SM primitive cross-checked against a second implementation (OpenSSL 3's command line and
library) in both directions."""

import re
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chain.crypto_profile import (AES_256_GCM, SM2_DEFAULT_SIGNER_ID, SM4_GCM, CryptoError, der_to_rs, profile,
                                  rs_to_der, sm2_keypair, sm2_sign, sm2_verify, sm3)

# GB/T 32918.2-2016 (GM/T 0003.2) example on the recommended curve sm2p256v1: the key pair, the
# message "message digest" and the default signer id give this (r, s).
SM2_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUBLIC = bytes.fromhex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                           "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM2_SIGNATURE = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                              "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


def test_sm3_gives_the_gm_t_0004_example_digests():
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_the_published_sm2_signature_verifies_and_nothing_near_it_does():
    assert sm2_verify(SM2_PUBLIC, b"message digest", SM2_SIGNATURE)
    assert not sm2_verify(SM2_PUBLIC, b"message digesT", SM2_SIGNATURE)
    assert not sm2_verify(SM2_PUBLIC, b"message digest", SM2_SIGNATURE, signer_id=b"ALICE123@YAHOO.COM")
    flipped = bytearray(SM2_SIGNATURE)
    flipped[40] ^= 1
    assert not sm2_verify(SM2_PUBLIC, b"message digest", bytes(flipped))
    assert not sm2_verify(SM2_PUBLIC[:63], b"message digest", SM2_SIGNATURE)  # malformed: False, not a crash
    signature = sm2_sign(SM2_PRIVATE, SM2_PUBLIC, b"message digest")  # a fresh k: another valid (r, s)
    assert signature != SM2_SIGNATURE and sm2_verify(SM2_PUBLIC, b"message digest", signature)


def test_der_and_r_s_round_trip_and_refuse_garbage():
    for sig in (SM2_SIGNATURE, b"\0" * 31 + b"\x01" + b"\x80" + b"\0" * 31):
        assert der_to_rs(rs_to_der(sig)) == sig
    for bad in (b"", b"\x30\x02\x02\x00", rs_to_der(SM2_SIGNATURE) + b"\0"):
        with pytest.raises(CryptoError):
            der_to_rs(bad)


def _openssl(*args, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)


def openssl_sm2_key(tmp_path) -> tuple[bytes, bytes]:
    """An SM2 key OpenSSL made: (private, public X || Y); k.pem and pub.pem in `tmp_path`."""
    key = tmp_path / "k.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", str(key)).returncode == 0
    _openssl("pkey", "-in", str(key), "-pubout", "-out", str(tmp_path / "pub.pem"))
    text = _openssl("pkey", "-in", str(key), "-text", "-noout").stdout.decode()
    private = bytes.fromhex(re.sub(r"[\s:]", "", text.split("priv:")[1].split("pub:")[0]))
    return private, bytes.fromhex(re.sub(r"[\s:]", "", text.split("pub:")[1].split("ASN1")[0]))[1:]


def test_sm2_signatures_cross_check_with_openssl_in_both_directions(tmp_path):
    private, public = openssl_sm2_key(tmp_path)
    key = tmp_path / "k.pem"
    message = "企业码 91350100M000100Y43".encode()
    (tmp_path / "msg").write_bytes(message)
    distid = "distid:" + SM2_DEFAULT_SIGNER_ID.decode()
    # OpenSSL signs, we verify.
    signed = _openssl("pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-digest", "sm3", "-pkeyopt", distid,
                      "-in", str(tmp_path / "msg"))
    assert signed.returncode == 0, signed.stderr
    assert sm2_verify(public, message, der_to_rs(signed.stdout))
    assert not sm2_verify(public, message + b".", der_to_rs(signed.stdout))
    # We sign, OpenSSL verifies.
    (tmp_path / "ours.der").write_bytes(rs_to_der(sm2_sign(private, public, message)))
    checked = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3",
                       "-pkeyopt", distid, "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "ours.der"))
    assert b"Signature Verified Successfully" in checked.stdout, checked.stderr
    private2, public2 = sm2_keypair()
    assert len(private2) == 32 and len(public2) == 64 and sm2_verify(public2, b"x", sm2_sign(private2, public2, b"x"))


def test_sm3_matches_openssl():
    for data in (b"", b"abc", bytes(range(256)) * 9):
        out = _openssl("dgst", "-sm3", "-r", data=data).stdout.split()[0].decode()
        assert sm3(data).hex() == out


def test_sm4_gives_the_gb_t_32907_example_and_sm4_gcm_matches_gmssl():
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    block = Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update(key)
    assert block.hex() == "681edf34d206965e86b3e94f536e4246"  # GB/T 32907-2016, example 1
    import gmssl_pyx

    nonce, aad, plain = bytes(range(12)), b"account/sha256", b"material bytes " * 1000
    sealed = SM4_GCM.seal(key, nonce, aad, plain)  # OpenSSL
    ciphertext, tag = gmssl_pyx.sm4_gcm_encrypt(key, nonce, aad, plain)  # GmSSL
    assert sealed == ciphertext + tag
    assert gmssl_pyx.sm4_gcm_decrypt(key, nonce, aad, sealed[:-16], sealed[-16:]) == plain
    assert SM4_GCM.open(key, nonce, aad, sealed) == plain
    assert SM4_GCM.open(key, nonce, aad, SM4_GCM.seal(key, nonce, aad, b"")) == b""  # an empty last chunk


@pytest.mark.parametrize("aead", [AES_256_GCM, SM4_GCM], ids=lambda a: a.name)
def test_a_seal_opens_only_with_its_key_nonce_and_associated_data(aead):
    key, nonce = bytes(range(aead.key_size)), b"\x01" * 12
    sealed = aead.seal(key, nonce, b"a/1", b"secret")
    assert len(sealed) == len(b"secret") + 16 and b"secret" not in sealed
    assert aead.open(key, nonce, b"a/1", sealed) == b"secret"
    for k, n, a, s in ((bytes(aead.key_size), nonce, b"a/1", sealed), (key, b"\x02" * 12, b"a/1", sealed),
                       (key, nonce, b"a/2", sealed), (key, nonce, b"a/1", sealed[:-1] + bytes([sealed[-1] ^ 1])),
                       (key, nonce, b"a/1", sealed[:10])):
        with pytest.raises(CryptoError):
            aead.open(k, n, a, s)
    with pytest.raises(CryptoError):
        aead.seal(key[:-1], nonce, b"", b"x")


def test_profiles_are_intl_and_gm_only():
    assert profile("intl").aead is AES_256_GCM and profile("gm").aead is SM4_GCM
    with pytest.raises(CryptoError):
        profile("GM")
