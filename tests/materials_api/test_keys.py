"""Keys that last for years: routine rotation leaves every earlier proof VALID, a compromise
splits at its block, keys live in encrypted keystores or a PKCS#11 token (SoftHSM2), and the
plaintext files of an older install are migrated."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
from sqlalchemy import select
from click.testing import CliRunner
from sqlalchemy import delete, select

from chain.keystore import STANDARD_SCRYPT_N, FileKeyStore, KeyStoreError
from chain.material_verify import verify_material
from chain.proof import ProofBundle
from materials_api.cli import main as cli
from materials_api.platform.config import Settings
from materials_api.platform.key_rotation import KeyRotationError, compromise, rotate
from materials_api.platform.mirror import ChainMirror
from materials_api.platform.models import ServiceKey
from materials_api.platform.runtime import Runtime
from materials_api.records.models import IssuerAccount, Record
from tests.materials_api.test_materials import PDF, anchor, bank, upload  # noqa: F401 - the fixture
from tests.materials_api.test_scan_roles import world  # noqa: F401 - the fixture

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture
def settings(settings):
    # Scans keep a writer's role for mirror_cache_ttl (2 s) per worker; these tests ask again at once.
    return Settings(**{**settings.model_dump(), "mirror_cache_ttl": 0})


def _anchored(api, keys, n: int) -> tuple[ProofBundle, bytes]:
    content = PDF + b"material %d" % n
    m = upload(api, keys["enterprise"], content=content).json()
    assert api.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]}).status_code == 200
    assert anchor(api).anchored == 1
    proof = api.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": keys["enterprise"]}).json()
    return ProofBundle.from_json(proof), hashlib.sha256(content).digest()


def _verdict(runtime, item):
    bundle, digest = item
    v = verify_material(bundle, content_sha256=digest, client=runtime.chain.client, trust=runtime.chain.trust)
    return v.status.value, v.check("issuer").reason.value, v.warnings


def test_notary_rotation_keeps_earlier_proofs_valid_and_a_compromise_splits_at_its_block(bank, keys, runtime):
    api = bank
    first = _anchored(api, keys, 1)
    old_notary = runtime.chain.notary.address
    assert _verdict(runtime, first) == ("VALID", "notary", [])

    done = rotate(runtime.chain, "notary", ["NOTARY_ROLE"])
    assert done.old_address == old_notary and runtime.chain.notary.address == done.new_address != old_notary
    assert not runtime.chain.ledger.has_role("NOTARY_ROLE", old_notary)
    # Anchored by the retired key, checked with the bundle alone by a fresh verifier: still VALID.
    assert _verdict(runtime, first) == ("VALID", "key_retired", ["key_retired"])
    second = _anchored(api, keys, 2)  # the service carries on with the new key
    assert second[0].root != first[0].root and _verdict(runtime, second) == ("VALID", "notary", [])
    third = _anchored(api, keys, 3)
    from_block = runtime.chain.client.block_number()  # the block the third batch was anchored in

    marked, rotation = compromise(runtime.chain, "notary", ["NOTARY_ROLE"], None, from_block)
    assert marked == done.new_address and rotation is not None  # the active key was replaced first
    assert _verdict(runtime, third) == ("INVALID", "key_compromised", [])
    assert _verdict(runtime, second) == ("VALID", "signed_before_compromise", ["signed_before_compromise"])
    assert _verdict(runtime, first) == ("VALID", "key_retired", ["key_retired"])  # another key: untouched
    fourth = _anchored(api, keys, 4)
    assert _verdict(runtime, fourth) == ("VALID", "notary", [])
    statuses = {(r.generation, r.status) for r in runtime.chain.keys.rows("notary")}
    assert statuses == {(1, "retired"), (2, "compromised"), (3, "active")}

    # "all": everything the key ever wrote is untrusted.
    compromise(runtime.chain, "notary", ["NOTARY_ROLE"], done.new_address, 0)
    assert _verdict(runtime, second)[:2] == ("INVALID", "key_compromised")


def test_an_issuer_key_rotated_keeps_its_records_valid_and_compromised_makes_them_invalid(api, keys, runtime, world):
    records = api.app.state.records
    mirror = ChainMirror(runtime.sessions, runtime.chain.client, runtime.chain.deployment.address,
                         runtime.chain.deployment.block_number)
    with runtime.sessions() as s:
        permit = s.get(Record, world["permit"]["id"])
        licence = s.get(Record, world["licence"]["id"])
        org = s.get(IssuerAccount, permit.issuer_organisation_id)  # the food office that issued it

    def issuer(record):
        mirror.follow(budget=30)  # as the follower does under the background lease
        with runtime.sessions() as s:
            v = records.verify(s.get(Record, record.id), "91350100M000100Y43")
        return v.status.value, v.check("issuer").reason.value

    assert issuer(permit) == ("VALID", "category_issuer")
    roles = records.issuer_roles(org.organisation_id)
    assert roles == ["issuer:permit.food"]
    done = rotate(runtime.chain, f"org-{org.organisation_id}", roles)
    assert issuer(permit) == ("VALID", "key_retired")
    # The food office issues on with its new key; then that key leaks from the second one on.
    def issue_permit(number):
        r = api.post("/api/v1/records", json={"uscc": "91350100M000100Y43", "kind": "food_business", "number": number,
                                              "data": {"items": "冷食"}}, headers={"Authorization": keys["food"]})
        assert r.status_code == 201, r.text
        with runtime.sessions() as s:
            return s.get(Record, r.json()["id"])

    second, third = issue_permit("JY2"), issue_permit("JY3")
    assert runtime.chain.ledger.has_role("issuer:permit.food", done.new_address)
    assert issuer(second) == issuer(third) == ("VALID", "category_issuer")
    assert second.block_number < third.block_number
    compromise(runtime.chain, f"org-{org.organisation_id}", roles, done.new_address, third.block_number)
    assert issuer(third) == ("INVALID", "key_compromised")
    assert issuer(second) == ("VALID", "signed_before_compromise")
    assert issuer(issue_permit("JY4")) == ("VALID", "category_issuer")  # a third generation took over
    # "all" for the first key: everything it ever issued.
    compromise(runtime.chain, f"org-{org.organisation_id}", roles, done.old_address, 0)
    assert issuer(permit) == ("INVALID", "key_compromised")
    assert issuer(licence) == ("VALID", "category_issuer")  # another authority's key: untouched


def test_a_rotation_stopped_half_way_is_finished_by_the_next(api, keys, runtime):
    chain = runtime.chain
    old = chain.notary.address
    # As if `keys rotate` died right after switching to the new key, before retiring the old.
    _, new = chain.keys.next_generation("notary")
    chain.ledger.grant_role(chain.governor, "NOTARY_ROLE", new.address)
    chain.keys.activate("notary", new.address)
    assert chain.ledger.has_role("NOTARY_ROLE", old)  # the old key still holds its role on chain
    done = rotate(chain, "notary", ["NOTARY_ROLE"])
    assert not chain.ledger.has_role("NOTARY_ROLE", old) and not chain.ledger.has_role("NOTARY_ROLE", new.address)
    assert chain.ledger.has_role("NOTARY_ROLE", done.new_address)
    assert [r.status for r in chain.keys.rows("notary")] == ["retired", "retired", "active"]


def test_refusals_change_nothing(api, keys, runtime):
    before = [(r.purpose, r.generation, r.status) for r in runtime.chain.keys.rows()]
    with pytest.raises(KeyRotationError) as refused:
        rotate(runtime.chain, "governor", ["GOVERNOR_ROLE"])
    assert refused.value.code == "governor_not_rotated"
    with pytest.raises(KeyRotationError) as refused:
        compromise(runtime.chain, "notary", ["NOTARY_ROLE"], "0x" + "12" * 20, 0)
    assert refused.value.code == "unknown_key"
    with pytest.raises(KeyRotationError) as refused:
        compromise(runtime.chain, "notary", ["NOTARY_ROLE"], None, runtime.chain.client.block_number() + 50)
    assert refused.value.code == "compromise_block"
    # No governor key: the key store lost it (a new one would hold no role on chain).
    with runtime.sessions.begin() as s:
        s.execute(delete(ServiceKey).where(ServiceKey.purpose == "governor"))
    os.unlink(runtime.settings.keys_dir / "governor.json")
    runtime.chain.keys.store._loaded.clear()
    runtime.chain.keys.forget()
    with pytest.raises(KeyRotationError) as refused:
        rotate(runtime.chain, "notary", ["NOTARY_ROLE"])
    assert refused.value.code == "no_governor_key"
    after = [(r.purpose, r.generation, r.status) for r in runtime.chain.keys.rows() if r.purpose != "governor"]
    assert after == [b for b in before if b[0] != "governor"]


def test_no_plaintext_key_on_disk_and_a_wrong_passphrase_is_refused(runtime, settings, evm, tmp_path):
    files = sorted(p.name for p in settings.keys_dir.iterdir())
    assert {"governor.json", "registrar.json", "notary.json"} <= set(files)
    assert all(name.endswith(".json") for name in files), files
    for path in settings.keys_dir.iterdir():
        body = json.loads(path.read_text())
        assert body["crypto"]["kdf"] == "scrypt" and "ciphertext" in body["crypto"]
        assert runtime.chain.governor.address.lower()[2:] not in path.read_text().lower() or path.stem == "governor"
    assert (settings.secrets_dir / "keystore-passphrase").stat().st_mode & 0o077 == 0
    # Production cost by default (the tests lower it through QIYEMA_KEYSTORE_SCRYPT_N, tests/conftest.py).
    assert Settings.model_fields["keystore_scrypt_n"].default == STANDARD_SCRYPT_N == 1 << 18
    FileKeyStore(tmp_path / "standard", b"pass").create("k")
    assert json.loads((tmp_path / "standard" / "k.json").read_text())["crypto"]["kdfparams"]["n"] == 1 << 18
    wrong = Settings(**{**settings.model_dump(), "keystore_passphrase": "not the passphrase"})
    with pytest.raises(KeyStoreError) as refused:
        Runtime.open(wrong, client=evm)
    assert refused.value.code == "keystore_passphrase"
    assert sorted(p.name for p in settings.keys_dir.iterdir()) == files  # nothing changed


def test_migrate_moves_plaintext_keys_into_the_keystore(tmp_path, monkeypatch, evm):
    home = tmp_path / "old-install"
    keys_dir = home / "keys"
    keys_dir.mkdir(parents=True)
    plain = {"governor": "11" * 32, "registrar": "22" * 32, "notary": "33" * 32, "org-4": "44" * 32}
    for name, key in plain.items():
        (keys_dir / f"{name}.eth").write_text(f"0x{key}\n")
    (keys_dir / "enterprise-code-master.key").write_text("55" * 32 + "\n")
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'q.db'}", chain_rpc_url="in-process",
                        mirror_max_age=0)
    with pytest.raises(KeyStoreError) as refused:  # an older install's files: the service will not start beside them
        Runtime.open(settings, client=evm)
    assert refused.value.code == "plaintext_keys" and "qiyema keys migrate" in refused.value.message

    monkeypatch.setenv("QIYEMA_HOME", str(home))
    monkeypatch.setenv("QIYEMA_KEYSTORE_PASSPHRASE", "operator's passphrase")
    result = CliRunner().invoke(cli, ["keys", "migrate"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in keys_dir.iterdir()) == sorted(f"{n}.json" for n in plain)
    assert "deleted enterprise-code-master.key: a master secret no longer used" in result.output
    store = FileKeyStore(keys_dir, b"operator's passphrase")
    from chain.signers import LocalSigner

    for name, key in plain.items():
        assert store.load(name).address == LocalSigner(bytes.fromhex(key)).address
    assert "nothing to migrate" in CliRunner().invoke(cli, ["keys", "migrate"]).output
    # The service now opens on the migrated keys: the same governor.
    opened = Runtime.open(Settings(**{**settings.model_dump(), "keystore_passphrase": "operator's passphrase"}),
                          client=evm)
    try:
        assert opened.chain.governor.address == LocalSigner(bytes.fromhex(plain["governor"])).address
    finally:
        opened.close()
    # A wrong passphrase for keystores already there: a clear message, exit 1, the plaintext kept.
    (keys_dir / "notary.eth").write_text("0x" + "66" * 32 + "\n")
    monkeypatch.setenv("QIYEMA_KEYSTORE_PASSPHRASE", "wrong")
    result = CliRunner().invoke(cli, ["keys", "migrate"])
    assert result.exit_code == 1 and "keystore_passphrase" in result.output
    assert (keys_dir / "notary.eth").exists()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """A SoftHSM2 token of its own (installed by scripts/bootstrap test): one per test session,
    since a PKCS#11 module is initialised once per process."""
    if not os.path.exists(SOFTHSM) or not shutil.which("softhsm2-util"):
        pytest.fail("SoftHSM2 is missing: scripts/bootstrap test installs it (Debian package softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in ("qiyema-test", "qiyema-other"):
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "2468",
                        "--so-pin", "13579"], check=True, capture_output=True, env={**os.environ})
    return {"key_custody": "pkcs11", "pkcs11_module": SOFTHSM, "pkcs11_token_label": "qiyema-test",
            "pkcs11_pin": "2468"}


def _a_dynamic_code_signed_inside_the_token(api, keys, runtime) -> None:
    """The enterprise's key is made, wrapped and used inside the token: the database holds it
    wrapped, the token holds no object for it, and its wrapping key cannot be read or wrapped out."""
    import pkcs11
    from pkcs11 import Attribute, Mechanism, ObjectClass

    from chain.keystore import WrappedKey
    from materials_api.codes.models import EnterpriseCodeSigner
    from materials_api.platform.keys import ENTERPRISE_WRAPPING

    store = runtime.chain.keys.store
    held = store.names()
    issued = api.post("/api/v1/codes/dynamic", json={}, headers={"Authorization": keys["enterprise"]})
    assert issued.status_code == 201, issued.text
    assert api.post("/api/v1/verify/code", json={"code": issued.json()["code"]}).json()["status"] == "VALID"
    assert store.names() == held  # no token object per enterprise
    with runtime.sessions() as s:
        row = s.scalars(select(EnterpriseCodeSigner)).one()
    assert row.wrapped_by == f"pkcs11:{ENTERPRISE_WRAPPING}"
    wrapping = store._wrapping_key(ENTERPRISE_WRAPPING, create=False)
    assert wrapping[Attribute.EXTRACTABLE] is False and wrapping[Attribute.SENSITIVE] is True
    with pytest.raises(pkcs11.AttributeSensitive):
        wrapping[Attribute.VALUE]
    other = store._session.generate_key(pkcs11.KeyType.AES, 256, store=False)
    with pytest.raises(pkcs11.PKCS11Error):
        other.wrap_key(wrapping, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    # Bytes swapped in from another enterprise's row, or altered: nothing is signed.
    key = WrappedKey("pkcs11", ENTERPRISE_WRAPPING, bytes(row.public_key), bytes(row.wrapped_key))
    someone_else = store.new_wrapped_key(ENTERPRISE_WRAPPING, b"x")
    for bad in (WrappedKey("pkcs11", ENTERPRISE_WRAPPING, key.public_key, someone_else.blob),
                WrappedKey("pkcs11", ENTERPRISE_WRAPPING, key.public_key, key.blob[:-1] + bytes([key.blob[-1] ^ 1]))):
        with pytest.raises(KeyStoreError) as refused:
            store.wrapped_signer(bad, b"").sign_hash(b"\x01" * 32)
        assert refused.value.code == "wrapped_key_invalid"
    # Keys unwrapped for signing are session objects, destroyed when they fall out of the cache.
    sessions_keys = lambda: len(list(store._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})))  # noqa: E731
    before = sessions_keys()
    old_size, store.wrapped_cache = store.wrapped_cache, 1
    try:
        for k in (key, someone_else, key):
            signature = store.wrapped_signer(k, b"").sign_hash(b"\x02" * 32)
            assert signature.recover_public_key_from_msg_hash(b"\x02" * 32).to_checksum_address() == k.address
        assert sessions_keys() <= before
    finally:
        store.wrapped_cache = old_size


def test_keys_in_a_pkcs11_token_sign_transactions_and_codes(softhsm, tmp_path, evm, database_url):
    from fastapi.testclient import TestClient

    from codes.scan import scan
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role
    from materials_api.main import create_app

    # secp256k1 keys inside the token (the intl profile's codes; the gm profile's SM2 code keys
    # under this custody: tests/materials_api/test_sealed_store.py).
    settings = Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url="in-process",
                        mirror_max_age=0, crypto_profile="intl", **softhsm)
    runtime = Runtime.open(settings, client=evm)  # deploys and grants with the token's governor
    try:
        assert runtime.chain.keys.store.backend == "pkcs11"
        assert not (settings.keys_dir.exists() and any(settings.keys_dir.iterdir()))  # nothing on disk
        registrar = runtime.chain.registrar.address
        assert runtime.chain.ledger.has_role("REGISTRAR_ROLE", registrar)
        with runtime.sessions.begin() as s:
            _, reg = create_key(s, "登记科", Role.REGISTRAR)
            _, ent = create_key(s, "企业", Role.ENTERPRISE, "91350100M000100Y43")
        with TestClient(create_app(runtime, reconcile=False)) as api:
            h = {"Authorization": f"Bearer {reg}"}
            r = api.post("/api/v1/enterprises", json={"uscc": "91350100M000100Y43", "name": "示例"}, headers=h)
            assert r.status_code == 201 and r.json()["chain"]["state"] == "confirmed"  # a transaction the token signed
            url = scan(api.get("/api/v1/enterprises/91350100M000100Y43/code.png", headers=h).content)[0]
            body = api.post("/api/v1/verify/code", json={"code": url}).json()  # a code the token signed
            assert body["status"] == "VALID", body
            assert api.post("/api/v1/codes/keys/rotate", headers=h).status_code == 403
            keys = {"enterprise": f"Bearer {ent}"}
            bundle, digest = _anchored(api, keys, 9)  # the notary in the token anchors
            assert verify_material(bundle, content_sha256=digest, client=evm, trust=runtime.chain.trust).status.value == "VALID"
            _a_dynamic_code_signed_inside_the_token(api, keys, runtime)
        # A wrong PIN, a token that is not there: clear refusals.
        from chain.pkcs11_keystore import Pkcs11KeyStore

        with pytest.raises(KeyStoreError) as refused:
            Pkcs11KeyStore(SOFTHSM, "qiyema-other", "0000")
        assert refused.value.code == "pkcs11_pin"
        with pytest.raises(KeyStoreError) as refused:
            Pkcs11KeyStore(SOFTHSM, "no-such-token", "2468")
        assert refused.value.code == "pkcs11_token"
    finally:
        runtime.close()
