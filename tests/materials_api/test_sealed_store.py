"""Materials encrypted at rest (issue 28): the object store and its backups hold ciphertext only;
what is served is the document; a changed, cut, extended or swapped object never opens; a new
wrapping key re-wraps the data keys and rewrites no object. On a folder and on MinIO, under both
profiles' ciphers, with keys in the keystore or in a SoftHSM2 token."""

import hashlib
import os

import pytest
from sqlalchemy import select

from chain.crypto_profile import AES_256_GCM, SM4_GCM, CryptoError
from materials_api.bank.materials import account_of
from materials_api.bank.models import Material
from materials_api.platform.backup import backup
from materials_api.platform.models import ObjectKey
from materials_api.platform.runtime import Runtime
from materials_api.platform.sealed_store import MAGIC, PLAIN_CHUNK, SealedStore
from materials_api.platform.storage import LocalObjectStore, Spool, StorageError
from materials_api.registry.models import Enterprise
from tests.materials_api.test_keys import softhsm  # noqa: F401 - the fixture
from tests.materials_api.test_materials import anchor, bank, settings, upload  # noqa: F401 - fixtures

MARKER = "租赁合同正文：甲方将杨浦区国定路 1 号出租给乙方".encode()
DOCUMENT = b"%PDF-1.7\n" + MARKER * 9000 + b"\n%%EOF\n"  # ~ 550 KB: many 64 KiB chunks


def _stored_bytes(store, account: str, sha256: str) -> bytes:
    inner = store.inner if isinstance(store, SealedStore) else store
    return b"".join(inner.open(account, sha256))


def _account(runtime, material_id: int) -> tuple[str, str]:
    with runtime.sessions() as s:
        m = s.get(Material, material_id)
        return account_of(s.get(Enterprise, m.enterprise_id)), m.sha256


def test_the_store_and_a_backup_hold_ciphertext_and_the_owner_downloads_the_document(bank, keys, runtime, tmp_path):
    m = upload(bank, keys["enterprise"], content=DOCUMENT).json()
    assert m["sha256"] == hashlib.sha256(DOCUMENT).hexdigest()  # the fingerprint is the plaintext's
    account, sha256 = _account(runtime, m["id"])
    stored = _stored_bytes(runtime.storage, account, sha256)
    assert stored.startswith(MAGIC) and MARKER not in stored and b"%PDF" not in stored
    assert len(stored) == 16 + len(DOCUMENT) + 16 * (len(DOCUMENT) // PLAIN_CHUNK + 1)
    got = bank.get(f"/api/v1/materials/{m['id']}/content", headers={"Authorization": keys["enterprise"]})
    assert got.status_code == 200 and got.content == DOCUMENT and got.headers["content-length"] == str(len(DOCUMENT))
    # The same file again: stored once (deduplicated by the plaintext's hash), one data key.
    again = upload(bank, keys["enterprise"], content=DOCUMENT)
    assert again.status_code == 200
    with runtime.sessions() as s:
        assert len(s.scalars(select(ObjectKey)).all()) == 1
    # Confirmed and anchored, the reuse check and the proof are the plaintext's, as before.
    bank.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
    anchor(bank)
    bundle = bank.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": keys["enterprise"]}).json()
    verdict = bank.post("/api/v1/verify/material", files={"file": ("x.pdf", DOCUMENT)},
                        data={"bundle": __import__("json").dumps(bundle)}).json()
    assert verdict["status"] == "VALID"
    # A backup (what a thief of the backup holds): no document in the clear anywhere in it.
    backup(runtime.settings, runtime.engine, runtime.storage, tmp_path / "b", signer=runtime.chain.governor)
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_bytes(), path


@pytest.mark.parametrize("aead", [AES_256_GCM, SM4_GCM], ids=lambda a: a.name)
def test_a_changed_cut_extended_or_swapped_object_never_opens(runtime, tmp_path, aead):
    store = SealedStore(LocalObjectStore(tmp_path / "objects"), runtime.sessions, runtime.chain.keys.store, aead,
                        "object-wrap-1")

    def put(data: bytes) -> str:
        spool = Spool(tmp_path / "spool", 10 << 20)
        spool.write(data)
        done = spool.finish()
        assert store.put_file("e1", done.sha256, done.path, "application/pdf")
        return done.sha256

    a, b = put(DOCUMENT), put(b"another document")
    empty = put(b"")
    assert b"".join(store.open("e1", a)) == DOCUMENT and b"".join(store.open("e1", empty)) == b""
    with runtime.sessions() as s:
        assert {k.cipher for k in s.scalars(select(ObjectKey))} == {aead.name}
    path = tmp_path / "objects" / "e1" / a[:2] / a
    genuine = path.read_bytes()

    def opened_as(data: bytes, name: str = a) -> None:
        target = tmp_path / "objects" / "e1" / name[:2] / name
        os.chmod(target, 0o644)
        target.write_bytes(data)
        with pytest.raises(CryptoError):
            b"".join(store.open("e1", name))

    flipped = bytearray(genuine)
    flipped[70_000] ^= 1
    opened_as(bytes(flipped))  # one bit changed in the second chunk
    opened_as(genuine[:-(len(DOCUMENT) % PLAIN_CHUNK + 16)])  # the last chunk cut off
    opened_as(genuine + genuine[16:16 + PLAIN_CHUNK + 16])  # a chunk added
    opened_as(genuine[:16] + genuine[16 + PLAIN_CHUNK + 16:])  # a chunk dropped from the middle
    opened_as(genuine, name=b)  # another object's bytes under this name: its seal names the other
    # A sealed object whose key row is gone is an error, never ciphertext served as the document.
    with runtime.sessions.begin() as s:
        s.delete(s.get(ObjectKey, ("e1", empty)))
    with pytest.raises(StorageError):
        store.open("e1", empty)


def test_an_object_stored_before_encryption_is_served_as_it_is(runtime, tmp_path):
    plain = LocalObjectStore(tmp_path / "objects")
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.write(b"%PDF old document")
    done = spool.finish()
    plain.put_file("e1", done.sha256, done.path, "application/pdf")
    store = SealedStore(plain, runtime.sessions, runtime.chain.keys.store, AES_256_GCM, "object-wrap-1")
    assert b"".join(store.open("e1", done.sha256)) == b"%PDF old document"


def test_a_new_wrapping_key_rewraps_every_data_key_and_rewrites_no_object(bank, keys, runtime, capsys):
    ids = [upload(bank, keys["enterprise"], content=DOCUMENT + bytes([n])).json()["id"] for n in range(3)]
    objects = {i: _account(runtime, i) for i in ids}
    before = {i: _stored_bytes(runtime.storage, *objects[i]) for i in ids}
    store = runtime.storage
    rotated = SealedStore(store.inner, runtime.sessions, runtime.chain.keys.store, store.aead, "object-wrap-2")
    assert rotated.rewrap() == 3 and rotated.rewrap() == 0
    with runtime.sessions() as s:
        assert {k.wrapping for k in s.scalars(select(ObjectKey))} == {"object-wrap-2"}
    fresh = SealedStore(store.inner, runtime.sessions, runtime.chain.keys.store, store.aead, "object-wrap-2")
    for i in ids:
        assert _stored_bytes(store, *objects[i]) == before[i]  # not rewritten
        assert b"".join(fresh.open(*objects[i])) == DOCUMENT + bytes([ids.index(i)])
    # The old wrapping key can go: nothing needs it any more.
    (runtime.settings.keys_dir / "object-wrap-1.json").unlink()
    fresh2 = SealedStore(store.inner, runtime.sessions, runtime.chain.keys.store.__class__(
        runtime.settings.keys_dir, runtime.chain.keys.store._passphrase), store.aead, "object-wrap-2")
    assert b"".join(fresh2.open(*objects[ids[0]])) == DOCUMENT + b"\x00"


def test_data_keys_wrapped_in_a_pkcs11_token_open_only_there(softhsm, tmp_path, evm, database_url):  # noqa: F811
    from materials_api.platform.config import Settings

    settings = Settings(home=tmp_path / "home", database_url=database_url, chain_rpc_url="in-process",
                        mirror_max_age=0, crypto_profile="gm", **softhsm)
    runtime = Runtime.open(settings, client=evm)
    try:
        store = runtime.storage
        assert isinstance(store, SealedStore) and store.aead is SM4_GCM and store.keystore.backend == "pkcs11"
        spool = Spool(tmp_path / "spool", 10 << 20)
        spool.write(DOCUMENT)
        done = spool.finish()
        store.put_file("e9", done.sha256, done.path, "application/pdf")
        assert MARKER not in _stored_bytes(store, "e9", done.sha256)
        assert b"".join(store.open("e9", done.sha256)) == DOCUMENT
        with runtime.sessions() as s:
            row = s.get(ObjectKey, ("e9", done.sha256))
        store._keys.clear()  # opened again from the token
        assert store.keystore.unwrap_data_key(row.wrapping, row.wrapped, b"e9/" + done.sha256.encode())
        from chain.keystore import KeyStoreError

        with pytest.raises(KeyStoreError):  # the same wrapped bytes for another object: refused
            store.keystore.unwrap_data_key(row.wrapping, row.wrapped, b"e9/" + b"0" * 64)
        # The gm profile's SM2 code keys under this custody: made by GmSSL (SoftHSM2 has no SM2),
        # kept wrapped by the token's AES key, and a code they sign verifies on chain.
        from materials_api.root import Services

        codes = Services.build(runtime).codes
        Services.build(runtime).enterprises.register("91350100M000100Y43", "示例")
        url, _ = codes.static_code("91350100M000100Y43")
        assert "/V/2S" in url and codes.verify(url).facts["genuine"] == "VALID"
        key = codes.active_key()
        assert key.wrapped_by.startswith("pkcs11:") and len(key.public_key) == 64
        assert runtime.chain.ledger.has_role("REGISTRAR_ROLE", key.address)
    finally:
        runtime.close()
