"""Code tokens of the gm profile (format version 2, SM2 over SM3): a frozen vector, the key set
that carries SM2 public keys, OpenSSL as a second implementation, and every way the two
profiles could be mixed or a key swapped."""

import subprocess
import time

import pytest

from chain.crypto_profile import Sm2Signer, rs_to_der, sm2_key_id
from chain.signers import LocalSigner
from codes import token
from codes.token import CodeFormatError
from codes.keyset import KeyInfo, KeySet, OfflineSource
from codes.verify import Status, verify

from tests.chain.test_crypto_profile import openssl_sm2_key

from .test_token import GOVERNOR, GOVERNOR_KEY, KEY, ORIGIN, STATIC_V1, USCC

# The GM/T 0003 example key (tests/chain/test_crypto_profile.py) and codes it signed once (SM2
# signs with a random k, so a vector is checked, not reproduced). Docs: docs/code-format.md.
SM2_KEY = Sm2Signer(bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"),
                    bytes.fromhex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                                  "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"))
SM2_KEY_ID = "0xb900d57CD86b4677fA5Dc70284c90de05fA77F9c"
STATIC_V2 = ("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/2S91350100M000100Y43AH063222728482511104325983048016097377523591754730"
             "36658774366917870487571409148554762297844645194323085532297771599988243775525487057437761820862890785760056")
DYNAMIC_SCOPED_V2 = ("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/2D91350100M000100Y43NFK3SADJKW5CYAABAIBQIBIGA4EASCQLAMIBCEQTCQKRMFYYDEN"
                     "BWHA5DYPZP6NAPWG64GDKXRWLMMPBQJBPKJERMUXHRU2EYMAYZBJYYQVGCFC23LEV7X2I7F5CWXDZJZS3ZMCT3YHWAOMV3W5G2JU"
                     "M5ZZ2JZLJPA")


def gm_keyset(keys=None, *, now=None, ttl=3600):
    now = int(time.time()) if now is None else now
    ks = KeySet(origin=ORIGIN, issued_at=now, expires_at=now + ttl, governor=GOVERNOR, profile="gm",
                keys=keys or [KeyInfo(7, SM2_KEY_ID, "active", SM2_KEY.public_key)])
    ks.sign(GOVERNOR_KEY)
    return ks


def gm_offline(**kw):
    return OfflineSource(KeySet.from_json(gm_keyset(**kw).to_json()), GOVERNOR)


def test_the_sm2_vectors_parse_and_verify_against_their_key_only():
    assert sm2_key_id(SM2_KEY.public_key) == SM2_KEY_ID == SM2_KEY.address
    s = token.parse(STATIC_V2)
    assert (s.version, s.scheme, s.kind, s.uscc, s.kid) == ("2", "sm2", "S", USCC, 7)
    assert s.message == b"\x19Qiyema Code v2 SM2\n" + ORIGIN.lower().encode() + b"\n2S" + USCC.encode() + b"AH"
    assert token.signed_by(s, SM2_KEY.public_key)
    assert not token.signed_by(s, Sm2Signer.generate().public_key)
    d = token.parse(DYNAMIC_SCOPED_V2)
    assert (d.issued_at, d.expires_at, d.nonce, d.single_use, d.scope_digest) == (
        1767225600, 1767225900, bytes(range(12)), True, bytes(range(16, 32)))
    assert token.signed_by(d, SM2_KEY.public_key)
    # An SM2 signature names no key; a secp256k1 one is not checked against a public key.
    with pytest.raises(ValueError):
        token.recover_signer(s)
    with pytest.raises(ValueError):
        token.signed_by(token.parse(STATIC_V1), SM2_KEY.public_key)


def test_a_new_sm2_code_is_as_long_as_a_secp256k1_one_and_round_trips():
    ours = token.static_code(ORIGIN, USCC, 7, SM2_KEY)
    assert len(ours) == len(STATIC_V1) and ours.startswith("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/2S")
    assert token.signed_by(token.parse(ours), SM2_KEY.public_key)
    assert verify(ours, gm_offline()).status == Status.SKIPPED  # offline: the status is not known
    assert verify(ours, gm_offline()).facts["genuine"] == "VALID"


@pytest.mark.parametrize("position", [60, 100, 150, 200, 208])
def test_a_changed_digit_of_the_sm2_signature_is_a_bad_signature(position):
    digit = STATIC_V2[position]
    altered = STATIC_V2[:position] + str((int(digit) + 1) % 10) + STATIC_V2[position + 1:]
    verdict = verify(altered, gm_offline())
    assert verdict.status == Status.INVALID
    assert [c.reason for c in verdict.checks if c.status == Status.INVALID][0] == "bad_signature"


def test_a_code_of_the_other_profile_is_refused_by_its_format():
    # A gm deployment's verifier never takes a secp256k1 code, however well signed, nor the reverse.
    verdict = verify(STATIC_V1, gm_offline())
    assert verdict.status == Status.INVALID and verdict.checks[0].reason == "code_profile"
    intl = KeySet(origin=ORIGIN, issued_at=int(time.time()), expires_at=int(time.time()) + 3600, governor=GOVERNOR,
                  keys=[KeyInfo(7, SM2_KEY_ID, "active")])
    intl.sign(GOVERNOR_KEY)
    verdict = verify(STATIC_V2, OfflineSource(intl, GOVERNOR))
    assert verdict.status == Status.INVALID and verdict.checks[0].reason == "code_profile"


def test_a_key_set_swapping_a_public_key_under_a_listed_id_is_refused():
    # Whoever edits the key set (or the database behind it) to put their own public key under a
    # listed id changes what the id names: the set no longer parses, and signed again by a
    # stranger it is not the governor's.
    mallory = Sm2Signer.generate()
    data = gm_keyset().to_json()
    data["keys"][0]["public_key"] = mallory.public_key.hex()
    with pytest.raises(CodeFormatError) as swapped:
        KeySet.from_json(data)
    assert swapped.value.code == "keyset_malformed"
    # An SM2 key listed with a public key that is its own but under a new kid: not the governor's.
    own = gm_keyset(keys=[KeyInfo(7, mallory.address, "active", mallory.public_key)])
    own.signature = gm_keyset().signature
    with pytest.raises(CodeFormatError) as resigned:
        OfflineSource(own, GOVERNOR)
    assert resigned.value.code == "keyset_signature"
    forged = token.static_code(ORIGIN, USCC, 7, mallory)
    assert verify(forged, gm_offline()).checks[-1].reason in ("bad_signature", "offline")
    assert [c.reason for c in verify(forged, gm_offline()).checks if c.name == "signature"] == ["bad_signature"]


def test_a_version_2_key_set_says_its_profile_and_carries_public_keys():
    data = gm_keyset(now=1767225600).to_json()
    assert data["version"] == 2 and data["profile"] == "gm"
    assert data["keys"] == [{"kid": 7, "address": SM2_KEY_ID, "status": "active", "public_key": SM2_KEY.public_key.hex()}]
    for broken in ({**data, "profile": "intl"}, {k: v for k, v in data.items() if k != "profile"},
                   {**data, "version": 1}, {**data, "keys": [{"kid": 7, "address": SM2_KEY_ID, "status": "active"}]},
                   {**data, "keys": [{**data["keys"][0], "public_key": "zz"}]}):
        with pytest.raises(CodeFormatError) as malformed:
            KeySet.from_json(broken)
        assert malformed.value.code == "keyset_malformed"
    # The profile is under the governor's signature: a v2 set read as v1 does not verify.
    relabelled = KeySet.from_json(data)
    relabelled.profile = "intl"
    with pytest.raises(CodeFormatError):
        relabelled.check(GOVERNOR, now=1767225600)


def test_a_retired_sm2_key_keeps_its_codes_and_a_compromised_one_does_not():
    retired = verify(STATIC_V2, gm_offline(keys=[KeyInfo(7, SM2_KEY_ID, "retired", SM2_KEY.public_key)]))
    assert retired.facts["genuine"] == "VALID"
    assert [c.reason for c in retired.checks if c.name == "key"] == ["key_retired"]
    gone = verify(STATIC_V2, gm_offline(keys=[KeyInfo(7, SM2_KEY_ID, "compromised", SM2_KEY.public_key)]))
    assert gone.status == Status.INVALID and "key_compromised" in [c.reason for c in gone.checks]


def _openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, check=False)


def test_openssl_verifies_a_code_signed_here_and_a_key_made_by_openssl_signs_codes_verified_here(tmp_path):
    """An inspector's app built on OpenSSL checks a gm code with nothing but docs/code-format.md:
    the message is the domain, the origin and the unsigned payload; the signature is SM2 r || s
    with the default signer id."""
    private, public = openssl_sm2_key(tmp_path)
    signer = Sm2Signer(private, public)
    code = token.static_code(ORIGIN, USCC, 9, signer)
    parsed = token.parse(code)
    (tmp_path / "msg").write_bytes(parsed.message)
    (tmp_path / "sig.der").write_bytes(rs_to_der(parsed.signature))
    checked = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3",
                       "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "msg"),
                       "-sigfile", str(tmp_path / "sig.der"))
    assert b"Signature Verified Successfully" in checked.stdout, checked.stderr
    verdict = verify(code, gm_offline(keys=[KeyInfo(9, signer.address, "active", public)]))
    assert verdict.facts["genuine"] == "VALID"


def test_an_sm2_signer_refuses_a_private_key_that_is_not_its_public_keys():
    from chain.crypto_profile import CryptoError

    with pytest.raises(CryptoError):
        Sm2Signer(Sm2Signer.generate().private_bytes(), SM2_KEY.public_key)
    assert "3945" not in repr(SM2_KEY) and SM2_KEY_ID in repr(SM2_KEY)
    assert LocalSigner(bytes(KEY.private_bytes())).address != SM2_KEY_ID


KEYSET_V2_VECTOR = {
    "canonical": '{"expires_at":1767312000,"governor":"0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A","issued_at":1767225600,'
                 '"keys":[{"address":"0xb900d57CD86b4677fA5Dc70284c90de05fA77F9c","kid":7,"public_key":"09f9df311e5421a1'
                 '50dd7d161e4bc5c672179fad1833fc076bb08ff356f35020ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f60'
                 '72da9ad13","status":"active"}],"origin":"https://qiyema.example.gov.cn","profile":"gm","version":2}',
    "digest": "84ea7c5d5d05eb99b7799107e72a7d038d35549dbaaea9f787cd66b46e26282e",
    "signature": "0x15f9a213d950a43ee2df18d4bb9718a007552d11418e7931f3874af61b9e42a36e4d234cd8ef9b8d776afb693f24df101ab1b0"
                 "b4b9c52fd36ef39dd960e5e5f001",
}


def test_the_version_2_key_set_vector_of_docs_code_format_md():
    """An inspector's app of the gm profile must hash these bytes under the v2 domain to check the
    governor's signature (deterministic: the governor signs with RFC 6979)."""
    from eth_utils import keccak

    ks = KeySet(origin="https://qiyema.example.gov.cn/", issued_at=1767225600, expires_at=1767312000, governor=GOVERNOR,
                profile="gm", keys=[KeyInfo(7, SM2_KEY_ID, "active", SM2_KEY.public_key)])
    assert ks.canonical().decode() == KEYSET_V2_VECTOR["canonical"]
    assert keccak(b"\x19Qiyema KeySet v2\n" + KEYSET_V2_VECTOR["canonical"].encode()).hex() == KEYSET_V2_VECTOR["digest"]
    assert ks.digest().hex() == KEYSET_V2_VECTOR["digest"]
    ks.sign(GOVERNOR_KEY)
    assert ks.signature == KEYSET_V2_VECTOR["signature"]
    again = KeySet.from_json(ks.to_json())
    assert again.keys == ks.keys and again.to_json() == ks.to_json()  # nothing added or lost through JSON
    again.check(GOVERNOR, now=1767312000)  # valid to its last second


def test_a_version_1_key_set_read_back_is_the_set_written():
    from .test_token import keyset

    written = keyset(now=1767225600)
    again = KeySet.from_json(written.to_json())
    assert again == written and all(k.public_key == b"" for k in again.keys) and again.profile == "intl"


def test_an_sm2_check_of_a_secp256k1_code_is_a_programming_error_that_says_what_to_call():
    with pytest.raises(ValueError) as wrong_call:
        token.signed_by(token.parse(STATIC_V1), SM2_KEY.public_key)
    assert str(wrong_call.value) == "a version-1 token names its signer: recover it (recover_signer)"


def test_a_refused_key_set_says_why_in_words_an_inspector_can_act_on():
    data = gm_keyset(now=1767225600).to_json()
    cases = [({**data, "version": 9}, "the key set is malformed: unknown key set version"),
             ({**data, "keys": [{**data["keys"][0], "public_key": Sm2Signer.generate().public_key.hex()}]},
              "the key set is malformed: a key's public key is not the key its id names")]
    for broken, words in cases:
        with pytest.raises(CodeFormatError) as refused:
            KeySet.from_json(broken)
        assert refused.value.message == words
    with pytest.raises(CodeFormatError) as stranger:
        gm_keyset(now=1767225600).check(SM2_KEY_ID, now=1767225600)
    assert stranger.value.message == "the key set is not signed by the trusted governor"
    with pytest.raises(CodeFormatError) as old:
        gm_keyset(now=1767225600).check(GOVERNOR, now=1767225600 + 3601)
    assert old.value.message == "the cached key set has expired; refresh it when online"
