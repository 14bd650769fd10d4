"""Code token format v1: frozen test vectors, round trips, and tampering with every field."""

import time

import pytest

from chain.signers import LocalSigner
from codes import token
from codes.token import CodeFormatError
from codes.keyset import KeyInfo, KeySet, OfflineSource
from codes.verify import Status, verify

# Test vectors (also in docs/code-format.md). Changing any of these is a new format version.
KEY = LocalSigner(bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))
ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
ORIGIN = "https://qiyema.example.gov.cn"
USCC = "91350100M000100Y43"
STATIC_V1 = ("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/1S91350100M000100Y43AH1214210662937769634504429901137324598830148149"
             "4079075287304974136012222589592384948826006635457274231485631846949848990211200475935990742267690628867158044")
DYNAMIC_V1 = ("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/1D91350100M000100Y43NFK3SADJKW5CYAABAIBQIBIGA4EASCQLADVDGVK4LKSUOZEBC5L"
              "ILR37PTSYV2PCWHM4RZN5G4AEXVN3GFMACF5T6XFOCGPECEJD2BW7FZ5MH6CRW7NVXZKT4EXLYE3BNGRLLTPB")
DYNAMIC_SCOPED_V1 = ("HTTPS://QIYEMA.EXAMPLE.GOV.CN/V/1D91350100M000100Y43NFK3SADJKW5CYAABAIBQIBIGA4EASCQLAMIBCEQTCQKRMFYYDEN"
                     "BWHA5DYP2RBJML4OCWUH26UYAGSB2YZG4KOI6DGTDL4UVOPKDNPC7WFSZ5ZHYQYPXKJ7OSU5GKN3JR7OGS676NFSSGYL7DDOLYL2YA"
                     "G33OAZ2KM")
GOVERNOR_KEY = LocalSigner(bytes.fromhex("11" * 32))
GOVERNOR = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"


def keyset(keys=None, *, now=None, ttl=3600, origin=ORIGIN, signer=GOVERNOR_KEY):
    now = int(time.time()) if now is None else now
    ks = KeySet(origin=origin, issued_at=now, expires_at=now + ttl,
                keys=keys or [KeyInfo(7, ADDRESS, "active")], governor=GOVERNOR)
    ks.sign(signer)
    return ks


def offline(**kw):
    return OfflineSource(keyset(**kw), GOVERNOR)


def test_vectors_are_stable():
    assert token.static_code(ORIGIN, USCC, 7, KEY) == STATIC_V1
    assert token.dynamic_code(ORIGIN, USCC, 1767225600, 1767225900, bytes(range(12)), KEY) == DYNAMIC_V1
    assert token.dynamic_code(ORIGIN, USCC, 1767225600, 1767225900, bytes(range(12)), KEY, single_use=True,
                              scope_digest=bytes(range(16, 32))) == DYNAMIC_SCOPED_V1


def test_vectors_parse_and_recover_the_signer():
    s = token.parse(STATIC_V1)
    assert (s.kind, s.origin, s.uscc, s.kid) == ("S", ORIGIN, USCC, 7)
    assert token.recover_signer(s) == ADDRESS
    d = token.parse(DYNAMIC_SCOPED_V1)
    assert (d.issued_at, d.expires_at, d.nonce, d.single_use, d.scope_digest) == (
        1767225600, 1767225900, bytes(range(12)), True, bytes(range(16, 32)))
    assert token.recover_signer(d) == ADDRESS


def test_lower_case_scan_parses_the_same():
    assert token.parse(STATIC_V1.lower()).message_hash == token.parse(STATIC_V1).message_hash


def test_static_code_offline_is_genuine_but_never_valid_without_its_standing():
    verdict = verify(STATIC_V1, offline())
    # Offline the key set proves who made the code; the enterprise's standing needs the network.
    assert verdict.facts["genuine"] == "VALID" and verdict.status == Status.SKIPPED
    by_name = {c.name: c for c in verdict.checks}
    assert by_name["signature"].status == Status.VALID and by_name["key"].status == Status.VALID
    assert (by_name["issuer"].status, by_name["issuer"].reason) == (Status.VALID, "registrar_in_keyset")
    assert by_name["status"].status == Status.SKIPPED


@pytest.mark.parametrize("position", range(len("1S") + 18 + 2 + token.SIG_CHARS))
def test_changing_any_character_of_a_static_code_is_never_valid(position):
    prefix = STATIC_V1[: STATIC_V1.index("/V/") + 3]
    payload = STATIC_V1[len(prefix):]
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY234567"
    replacement = next(c for c in alphabet if c != payload[position])
    tampered = prefix + payload[:position] + replacement + payload[position + 1:]
    assert verify(tampered, offline()).status == Status.INVALID


@pytest.mark.parametrize("field", ["issued_at", "expires_at", "nonce", "single_use", "scope"])
def test_changing_any_field_of_a_dynamic_code_breaks_its_signature(field):
    base = dict(issued_at=1767225600, expires_at=1767225900, nonce=bytes(range(12)), single_use=True,
                scope_digest=bytes(range(16, 32)))
    changed = dict(base)
    if field == "issued_at":
        changed["issued_at"] -= 1
    elif field == "expires_at":
        changed["expires_at"] += 3600
    elif field == "nonce":
        changed["nonce"] = bytes(12)
    elif field == "single_use":
        changed["single_use"] = False
    else:
        changed["scope_digest"] = bytes(16)
    genuine = token.parse(token.dynamic_code(ORIGIN, USCC, base["issued_at"], base["expires_at"], base["nonce"], KEY,
                                             single_use=True, scope_digest=base["scope_digest"]))
    forged_unsigned = token.dynamic_code(ORIGIN, USCC, changed["issued_at"], changed["expires_at"],
                                         changed["nonce"], KEY, single_use=changed["single_use"],
                                         scope_digest=changed["scope_digest"])
    # Keep the forged fields but the genuine signature: it must no longer recover to the key.
    forged = token.parse(forged_unsigned)
    forged = forged.__class__(**{**forged.__dict__, "signature": genuine.signature})
    # A signature over other fields recovers to some other address, or to none at all (an
    # invalid point): either way never to the key that signed the genuine code.
    try:
        recovered = token.recover_signer(forged)
    except CodeFormatError:
        recovered = None
    assert recovered != ADDRESS


def test_a_code_copied_onto_another_host_is_invalid():
    copy = STATIC_V1.replace("QIYEMA.EXAMPLE.GOV.CN", "QIYEMA-EXAMPLE.CN")
    verdict = verify(copy, offline())
    assert verdict.status == Status.INVALID and verdict.checks[-1].reason == "foreign_origin"


def test_a_code_signed_by_an_unknown_key_is_invalid():
    code = token.static_code(ORIGIN, USCC, 7, LocalSigner(bytes.fromhex("22" * 32)))
    verdict = verify(code, offline())
    assert verdict.status == Status.INVALID and "bad_signature" in [c.reason for c in verdict.checks]
    code = token.static_code(ORIGIN, USCC, 9, KEY)
    assert "unknown_key" in [c.reason for c in verify(code, offline()).checks]


def test_offline_a_retired_key_still_verifies_with_a_warning_and_a_compromised_one_does_not():
    verdict = verify(STATIC_V1, offline(keys=[KeyInfo(7, ADDRESS, "retired")]))
    assert verdict.facts["genuine"] == "VALID" and verdict.warnings == ["key_retired"]
    assert verdict.as_dict()["warnings"] == ["key_retired"]
    verdict = verify(STATIC_V1, offline(keys=[KeyInfo(7, ADDRESS, "compromised")]))
    assert verdict.status == Status.INVALID and verdict.check("key").reason == "key_compromised"
    # A state this verifier does not know is not trusted.
    assert verify(STATIC_V1, offline(keys=[KeyInfo(7, ADDRESS, "suspended")])).status == Status.INVALID


def test_offline_dynamic_code_checks_expiry_and_skips_what_needs_the_network():
    now = int(time.time())
    code = token.dynamic_code(ORIGIN, USCC, now, now + 300, bytes(12), KEY)
    verdict = verify(code, offline(), now)
    statuses = {c.name: c.status for c in verdict.checks}
    assert statuses["expiry"] == Status.VALID and statuses["replay"] == Status.SKIPPED
    # Its signer is on chain only: offline a dynamic code is never VALID, nor genuine.
    assert statuses["signature"] == Status.SKIPPED and verdict.status == Status.SKIPPED
    assert verdict.facts["genuine"] == "SKIPPED"
    assert verify(code, offline(), now + 301).status == Status.INVALID


def test_offline_a_dynamic_code_signed_by_a_random_key_is_not_valid():
    """The attack: offline, the enterprise's signer check cannot be made; a code signed by any key
    used to combine into VALID."""
    import secrets

    now = int(time.time())
    forged = token.dynamic_code(ORIGIN, USCC, now, now + 300, bytes(12), LocalSigner(secrets.token_bytes(32)))
    verdict = verify(forged, offline(), now)
    assert verdict.status is not Status.VALID and verdict.facts["genuine"] != "VALID"


def test_keyset_must_be_signed_by_the_trusted_governor_and_fresh():
    with pytest.raises(CodeFormatError, match="trusted governor"):
        OfflineSource(keyset(signer=LocalSigner(bytes.fromhex("33" * 32))), GOVERNOR)
    with pytest.raises(CodeFormatError, match="expired"):
        OfflineSource(keyset(now=int(time.time()) - 7200, ttl=3600), GOVERNOR)
    tampered = keyset()
    tampered.keys = [KeyInfo(7, "0x" + "ab" * 20, "active")]
    with pytest.raises(CodeFormatError):
        OfflineSource(tampered, GOVERNOR)
    round_trip = KeySet.from_json(keyset().to_json())
    assert OfflineSource(round_trip, GOVERNOR).static_key(7).address == ADDRESS
    with pytest.raises(CodeFormatError, match="malformed"):
        KeySet.from_json({"version": 1, "origin": ORIGIN})


@pytest.mark.parametrize("text, reason", [
    ("hello world", "code_not_qiyema"),
    ("https://example.com/some/page", "code_not_qiyema"),
    ("https://qiyema.example.gov.cn/V/3S123", "code_version"),
    ("https://qiyema.example.gov.cn/V/1X91350100M000100Y43", "code_kind"),
    ("https://qiyema.example.gov.cn/V/1S91350100M000100Y43AA", "code_length"),
    ("https://qiyema.example.gov.cn/V/1D91350100M000100Y43AAAA", "code_length"),
    ("https://qiyema.example.gov.cn/V/1D91350100M000100Y44" + "A" * 120, "code_uscc"),
])
def test_foreign_and_malformed_codes_get_a_clear_reason(text, reason):
    verdict = verify(text, offline())
    assert verdict.status == Status.INVALID and verdict.checks[0].reason == reason


KEYSET_VECTOR = {
    "canonical": '{"expires_at":1767312000,"governor":"0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A","issued_at":1767225600,'
                 '"keys":[{"address":"0x1563915e194D8CfBA1943570603F7606A3115508","kid":3,"status":"retired"},'
                 '{"address":"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23","kid":7,"status":"active"}],'
                 '"origin":"https://qiyema.example.gov.cn","version":1}',
    "digest": "bb48481473d92020319372243160ba6f354a2a5f5e57c375d7f398cd7ea91dd1",
    "signature": "0x20cf68b37423708ae390be31ea864df66ae93508d9c8ead361914be02db8e4730578ca686fd2dddb1e7349271fa795d0054f08"
                 "057535735f2e2c5f6e2fd3128600",
}


def test_the_key_set_vector_of_docs_code_format_md():
    """Another implementation (an inspector's app) must produce these bytes to check the
    governor's signature: keys sorted by kid, JSON keys sorted, no spaces."""
    ks = KeySet(origin="https://qiyema.example.gov.cn/", issued_at=1767225600, expires_at=1767312000,
                keys=[KeyInfo(7, ADDRESS, "active"), KeyInfo(3, LocalSigner(bytes.fromhex("22" * 32)).address, "retired")],
                governor=GOVERNOR)
    assert ks.canonical().decode() == KEYSET_VECTOR["canonical"]
    assert ks.digest().hex() == KEYSET_VECTOR["digest"]
    ks.sign(GOVERNOR_KEY)
    assert ks.signature == KEYSET_VECTOR["signature"]
    ks.check(GOVERNOR, now=1767225600)


def test_a_key_set_is_refused_with_its_reason_at_each_edge():
    fresh = keyset(now=1767225600, ttl=3600)
    fresh.check(GOVERNOR, now=1767225600 + 3600)  # valid up to and including its last second
    with pytest.raises(CodeFormatError) as late:
        fresh.check(GOVERNOR, now=1767225600 + 3601)
    assert late.value.code == "keyset_expired"
    # `now` is the caller's clock, not the machine's: an inspector's device told the time.
    with pytest.raises(CodeFormatError) as told:
        OfflineSource(keyset(), GOVERNOR, now=int(time.time()) + 7200)
    assert told.value.code == "keyset_expired"
    # Signed by the trusted governor, but naming another governor in its body: refused, so a
    # key set always says truly who vouches for it.
    claims_other = keyset(now=1767225600)
    claims_other.governor = LocalSigner(bytes.fromhex("33" * 32)).address
    claims_other.sign(GOVERNOR_KEY)
    with pytest.raises(CodeFormatError) as other:
        claims_other.check(GOVERNOR, now=1767225600)
    assert other.value.code == "keyset_signature"
    with pytest.raises(CodeFormatError) as stranger:
        keyset(now=1767225600, signer=LocalSigner(bytes.fromhex("33" * 32))).check(GOVERNOR, now=1767225600)
    assert stranger.value.code == "keyset_signature"
    with pytest.raises(CodeFormatError) as malformed:
        KeySet.from_json({"version": 1, "origin": ORIGIN})
    assert malformed.value.code == "keyset_malformed"


class LedgerSource:
    """An online source held in memory: the enterprise's signer, its standing and the nonces
    issued, as the service's tables and the chain would answer."""

    origin = ORIGIN
    offline = False
    profile = "intl"

    def __init__(self, issued: dict[bytes, dict | None]):
        self.issued, self.used = issued, set()

    def static_key(self, kid):
        return None

    def registrar_term(self, address):
        return None

    def enterprise_signer(self, uscc):
        return ADDRESS

    def enterprise(self, uscc):
        from codes.verify import EnterpriseInfo

        return EnterpriseInfo(uscc, "福建示例科技有限公司", "active")

    def use_nonce(self, token_, now):
        if token_.nonce not in self.issued:
            return "unknown", None
        if token_.single_use and token_.nonce in self.used:
            return "replayed", None
        self.used.add(token_.nonce)
        return "fresh", self.issued[token_.nonce]


def _checks(verdict):
    return {c.name.value: (c.status.value, c.reason.value, c.message) for c in verdict.checks}


def test_a_dynamic_code_lives_to_the_second_before_its_end_and_from_a_minute_before_its_start():
    t0 = 1767225600
    code = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(12), KEY)
    source = LedgerSource({bytes(12): None})
    assert _checks(verify(code, source, t0 + 299))["expiry"] == ("VALID", "not_expired", "valid for 1 s more")
    assert _checks(verify(code, source, t0 + 300))["expiry"] == ("INVALID", "expired", "expired 0 s ago")
    assert _checks(verify(code, source, t0 + 305))["expiry"] == ("INVALID", "expired", "expired 5 s ago")
    # Issued up to 60 s ahead of the verifier's clock (clocks drift): accepted; further: refused.
    assert _checks(verify(code, source, t0 - 60))["expiry"][0] == "VALID"
    assert _checks(verify(code, source, t0 - 61))["expiry"] == ("INVALID", "not_yet_valid", "issued in the future")


def test_a_nonce_is_fresh_once_replayed_after_and_unknown_if_never_issued_here():
    t0 = 1767225600
    once = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(12), KEY, single_use=True)
    many = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(range(1, 13)), KEY)
    # The enterprise's own key, a nonce the service never issued (a thief minting codes).
    minted = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(range(2, 14)), KEY)
    source = LedgerSource({bytes(12): {"verifier_org": "示例银行"}, bytes(range(1, 13)): None})
    first = verify(once, source, t0 + 1)
    assert _checks(first)["replay"] == ("VALID", "fresh", "first use") and first.status == Status.VALID
    assert first.facts["scope"] == {"verifier_org": "示例银行"}
    assert _checks(verify(once, source, t0 + 2))["replay"] == ("INVALID", "replayed", "this single-use code was already used")
    assert _checks(verify(many, source, t0 + 1))["replay"] == ("VALID", "fresh", "reusable until expiry")
    assert _checks(verify(many, source, t0 + 2))["replay"][0] == "VALID"
    unknown = verify(minted, source, t0 + 1)
    assert _checks(unknown)["replay"] == ("INVALID", "unknown_nonce", "this code was never issued here")
    assert unknown.status == Status.INVALID


def test_base32_round_trips_every_length_and_ending():
    """The payload's base32 has no padding; a payload ending in any letter (X included) comes back
    byte for byte."""
    import random

    rng = random.Random(32)
    for n in list(range(0, 80)) + [rng.randrange(80, 200) for _ in range(200)]:
        data = bytes(rng.randrange(256) for _ in range(n))
        text = token.b32encode(data)
        assert "=" not in text and token.b32decode(text) == data
    assert token.b32encode(b"\xbd\xef\x7b\xde\xf7") == "XXXXXXXX"
    assert token.b32decode("XXXXXXXX") == b"\xbd\xef\x7b\xde\xf7"


def test_every_key_id_round_trips_and_one_beyond_is_refused():
    """Key ids 0..1023 in two base32 characters: each edge and each side of 32 (the second
    character's carry) reads back as itself; -1 and 1024 are not key ids."""
    signer = LocalSigner(bytes([7]) * 32)
    for kid in (0, 1, 31, 32, 33, 545, 1022, 1023):
        code = token.static_code("https://qiyema.example.gov.cn", "91350100M000100Y43", kid, signer)
        assert token.parse(code).kid == kid
        assert code.split("/V/")[1][20:22] == token._B32[kid // 32] + token._B32[kid % 32]
    for kid in (-1, 1024):
        with pytest.raises(ValueError, match="kid must be 0..1023"):
            token.static_code("https://qiyema.example.gov.cn", "91350100M000100Y43", kid, signer)
    code = token.static_code("https://qiyema.example.gov.cn", "91350100M000100Y43", 3, signer)
    at = code.index("/V/") + 3 + 20
    with pytest.raises(CodeFormatError) as refused:
        token.parse(code[:at] + "1" + code[at + 1:])  # "1" is not a base32 letter
    assert (refused.value.code, refused.value.message) == ("code_kid", "the key id is not two base32 characters")


def test_a_static_codes_signature_is_a_number_below_two_to_the_512():
    code = token.static_code("https://qiyema.example.gov.cn", "91350100M000100Y43", 3, LocalSigner(bytes([9]) * 32))
    head = code[:-token.SIG_CHARS]
    largest = str((1 << 512) - 1).zfill(token.SIG_CHARS)
    assert token.parse(head + largest).signature == b"\xff" * 64  # parses (and fails its signature check later)
    assert len(str(1 << 512)) == token.SIG_CHARS
    for bad in (str(1 << 512), largest[:-1] + "A", largest[:-1] + "-"):
        with pytest.raises(CodeFormatError) as refused:
            token.parse(head + bad)
        assert (refused.value.code, refused.value.message) == (
            "code_encoding", "the code's signature is not a 155-digit number")


def test_a_dynamic_codes_checks_say_what_a_person_reads_online_and_offline():
    """The words beside each reason are what an inspector's screen shows: who signed, and why a
    check could not be made offline."""
    t0 = 1767225600
    code = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(12), KEY)
    online = _checks(verify(code, LedgerSource({bytes(12): None}), t0 + 1))
    assert online["signature"] == ("VALID", "signed", f"signed by the enterprise's key {ADDRESS}")
    assert online["replay"] == ("VALID", "fresh", "reusable until expiry")
    stranger = token.dynamic_code(ORIGIN, USCC, t0, t0 + 300, bytes(12), LocalSigner(bytes.fromhex("33" * 32)))
    assert _checks(verify(stranger, LedgerSource({bytes(12): None}), t0 + 1))["signature"] == (
        "INVALID", "bad_signature", "not signed by the enterprise's current code-signing key (forged, altered or rotated)")
    cached = _checks(verify(code, OfflineSource(keyset(now=t0), GOVERNOR, now=t0), t0 + 1))
    assert cached["signature"] == ("SKIPPED", "offline", "offline: the enterprise's code signer is on chain only")
    assert cached["replay"] == ("SKIPPED", "offline", "offline: single use cannot be checked")


def test_a_static_codes_key_and_issuer_checks_say_what_a_person_reads():
    """The words an inspector reads beside a static code's key and issuer checks: which key, and
    what its standing means for the code on the wall."""
    now = 1767225600
    retired, compromised = LocalSigner(bytes.fromhex("22" * 32)), LocalSigner(bytes.fromhex("44" * 32))
    source = OfflineSource(keyset(keys=[KeyInfo(7, ADDRESS, "active"), KeyInfo(3, retired.address, "retired"),
                                        KeyInfo(5, compromised.address, "compromised")], now=now), GOVERNOR, now=now)
    by_kid = {kid: _checks(verify(token.static_code(ORIGIN, USCC, kid, signer), source, now))
              for kid, signer in ((7, KEY), (3, retired), (5, compromised))}
    assert by_kid[7]["key"] == ("VALID", "key_active", "key 7 is current")
    assert by_kid[3]["key"] == ("VALID", "key_retired", "key 3 was retired since it signed; the code stays valid")
    assert by_kid[5]["key"] == ("INVALID", "key_compromised",
                                "key 5 was declared compromised: the code must be replaced (请更换企业码)")
    assert by_kid[7]["signature"] == ("VALID", "signed", f"signed by registrar key 7 ({ADDRESS})")
    assert _checks(verify(token.static_code(ORIGIN, USCC, 9, KEY), source, now))["signature"] == (
        "INVALID", "unknown_key", "no registrar key with id 9")
    assert _checks(verify(token.static_code(ORIGIN, USCC, 7, retired), source, now))["signature"] == (
        "INVALID", "bad_signature", "the signature is not by key 7: the code was altered or forged")
    assert by_kid[7]["issuer"] == ("VALID", "registrar_in_keyset",
                                   "offline: the key is on the key set signed by the pinned governor")

    class ChainSaysCompromised(OfflineSource):
        def registrar_term(self, address):
            return "compromised"

    chain_view = ChainSaysCompromised(keyset(now=now), GOVERNOR, now=now)
    assert _checks(verify(token.static_code(ORIGIN, USCC, 7, KEY), chain_view, now))["issuer"] == (
        "INVALID", "key_compromised", "the chain holds the signer's registrar key as compromised")


def test_a_verdict_names_the_signer_and_the_enterprise_and_says_each_standing_in_words():
    """What the scan page shows beside VALID or INVALID: who signed, which enterprise (USCC, name,
    standing), and in words why a check failed or was skipped."""
    from codes.verify import EnterpriseInfo

    now = 1767225600
    static = token.static_code(ORIGIN, USCC, 7, KEY)
    cached = OfflineSource(keyset(now=now), GOVERNOR, now=now)
    offline_verdict = verify(static, cached, now)
    assert offline_verdict.facts["signer"] == ADDRESS and offline_verdict.facts["enterprise"] is None
    assert _checks(offline_verdict)["origin"] == ("VALID", "origin_matches", "https://qiyema.example.gov.cn")
    assert _checks(offline_verdict)["status"] == ("SKIPPED", "offline", "offline: the enterprise's live status is not known")
    forged = static[:-token.SIG_CHARS] + "0" * token.SIG_CHARS
    assert _checks(verify(forged, cached, now))["signature"] == (
        "INVALID", "code_signature", "the signature does not recover to any key")
    copied = static.replace("QIYEMA.EXAMPLE.GOV.CN", "EVIL.EXAMPLE.COM")
    assert _checks(verify(copied, cached, now))["origin"] == (
        "INVALID", "foreign_origin", "the code points at https://evil.example.com, not at https://qiyema.example.gov.cn")

    class Register(LedgerSource):
        def __init__(self, status):
            super().__init__({bytes(12): None})
            self.status = status

        def enterprise(self, uscc):
            return None if self.status is None else EnterpriseInfo(uscc, "福建示例科技有限公司", self.status)

    dynamic = token.dynamic_code(ORIGIN, USCC, now, now + 300, bytes(12), KEY)
    words = {"active": ("VALID", "enterprise_active", "the enterprise is active (存续)"),
             "abnormal": ("VALID", "enterprise_abnormal", "the enterprise exists but is listed as abnormal (经营异常)"),
             "revoked": ("INVALID", "enterprise_revoked", "the enterprise is 吊销 (licence revoked)"),
             "deregistered": ("INVALID", "enterprise_deregistered", "the enterprise is 注销 (deregistered)"),
             None: ("INVALID", "enterprise_unknown", f"{USCC} is not registered")}
    for status, expected in words.items():
        verdict = verify(dynamic, Register(status), now + 1)
        assert _checks(verdict)["status"] == expected, status
        assert verdict.facts["signer"] == ADDRESS
        assert verdict.facts["enterprise"] == (None if status is None else
                                               {"uscc": USCC, "name": "福建示例科技有限公司", "status": status})


def test_an_sm2_code_given_to_secp256k1_recovery_is_a_programming_error_that_says_what_to_call():
    from tests.codes.test_token_sm2 import STATIC_V2

    with pytest.raises(ValueError) as wrong_call:
        token.recover_signer(token.parse(STATIC_V2))
    assert str(wrong_call.value) == "an SM2 signature recovers no key: check it against a public key (signed_by)"


def _with_body(code: str, edit) -> str:
    """A dynamic code whose body (before its signature) `edit` changed: what a forger can print."""
    head, payload = code.split("/V/")
    blob = bytearray(token.b32decode(payload[20:].upper()))
    edit(blob)
    return f"{head}/V/{payload[:20]}{token.b32encode(bytes(blob))}"


def test_a_code_is_refused_at_each_edge_of_its_format_with_its_reason_and_words():
    static = token.static_code(ORIGIN, USCC, 7, KEY)
    dynamic = token.dynamic_code(ORIGIN, USCC, 1767225600, 1767225900, bytes(12), KEY)
    cases = [
        ("ftp://qiyema.example.gov.cn/V/" + static.split("/V/")[1], "code_not_qiyema",
         "this is not a Qiyema code (not an http(s) link)"),
        ("https:///V/" + static.split("/V/")[1], "code_not_qiyema", "this is not a Qiyema code (not an http(s) link)"),
        (static + "?utm_source=wechat", "code_not_qiyema", "this is not a Qiyema code (unexpected path)"),
        (static + "#top", "code_not_qiyema", "this is not a Qiyema code (unexpected path)"),
        ("https://qiyema.example.gov.cn/V/1", "code_version", "unknown code format version '1'"),
        ("https://qiyema.example.gov.cn/V/1S", "code_length",
         f"a static code payload has {22 + token.SIG_CHARS} characters, not 2"),
        ("https://qiyema.example.gov.cn/V/9S", "code_version", "unknown code format version '9'"),
        ("https://qiyema.example.gov.cn/V/1Q", "code_kind", "unknown code kind 'Q'"),
        (dynamic[:-8], "code_length", "a dynamic code payload has the wrong length"),
        (_with_body(dynamic, lambda b: b.__setitem__(20, b[20] | 0x80)), "code_flags",
         "a dynamic code's flags do not match its length"),  # a flag no version defines, at the right length
    ]
    for text, code, words in cases:
        with pytest.raises(CodeFormatError) as refused:
            token.parse(text)
        assert (refused.value.code, refused.value.message) == (code, words), text
    with pytest.raises(CodeFormatError) as bad_uscc:
        token.parse(static.replace(USCC, USCC[:-1] + "0"))
    assert bad_uscc.value.code == "code_uscc" and bad_uscc.value.message
    parsed = token.parse(dynamic)
    assert (parsed.kind, parsed.scope_digest, parsed.single_use) == ("D", None, False)


def test_a_verdict_reports_the_codes_kind_and_lifetime_and_reads_the_clock_when_given_none():
    now = int(time.time())
    static = verify(token.static_code(ORIGIN, USCC, 7, KEY), OfflineSource(keyset(now=now), GOVERNOR, now=now), now)
    assert (static.facts["kind"], static.facts["uscc"], static.facts["expires_at"]) == ("static", USCC, None)
    assert _checks(static)["format"] == ("VALID", "parsed", "format version 1, static")
    code = token.dynamic_code(ORIGIN, USCC, now, now + 300, bytes(12), KEY)
    dynamic = verify(code, LedgerSource({bytes(12): None}))  # no `now`: the verifier's own clock
    assert (dynamic.facts["kind"], dynamic.facts["expires_at"]) == ("dynamic", now + 300)
    assert _checks(dynamic)["format"] == ("VALID", "parsed", "format version 1, dynamic")
    assert _checks(dynamic)["expiry"][:2] == ("VALID", "not_expired") and dynamic.status == Status.VALID
    assert _checks(verify("https://qiyema.example.gov.cn/V/1Q", offline()))["format"] == (
        "INVALID", "code_kind", "unknown code kind 'Q'")
