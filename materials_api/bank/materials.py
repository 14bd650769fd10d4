"""The material bank: upload once, confirm, version, withdraw, revoke, prove, reuse.

Write order for every upload: the row is written ahead (STORING), then the bytes go to the
store, then the row becomes UPLOADED; anchoring comes later (see anchoring.py). A crash between
any two steps leaves a row the start-up reconciliation finishes or removes, never a half-stored
material, and the store is write-once and content-addressed so a retry stores nothing twice.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Iterator

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from chain.material_verify import verify_material, verify_materials
from chain.proof import Anchor, LeafInput, ProofBundle
from chain.crypto_profile import CryptoError
from chain.verdict import Check, CheckName, Reason, Status, Verdict
from codes.uscc import chain_key
from materials_api.bank.catalogue import Catalogue
from materials_api.bank.models import (
    AnchorBatch,
    Application,
    ApplicationMaterial,
    Material,
    MaterialState,
    ReplacedProof,
    Reuse,
    TrustLabel,
)
from chain.clock import SYSTEM, Clock
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.failpoints import failpoint
from materials_api.platform.models import ChainState
from materials_api.platform.runtime import ChainContext
from materials_api.platform.sniff import UnsupportedContent, sniff
from materials_api.platform.storage import ObjectStore, Spooled, StorageError
from materials_api.registry.models import Enterprise

LIVE = (MaterialState.CONFIRMED.value, MaterialState.ANCHORED.value)
_M = Material.__table__  # Core on the upload path: it runs for every upload
# Built once: SQLAlchemy then reuses their compiled form without building a cache key each time.
_SAME_BYTES = (select(_M).where(_M.c.enterprise_id == bindparam("enterprise"), _M.c.sha256 == bindparam("sha256"),
                                _M.c.type_code == bindparam("folder"),
                                _M.c.state.in_(LIVE + (MaterialState.UPLOADED.value,))).limit(1))
_WRITE_AHEAD = insert(_M).returning(_M.c.id)
_STORED = update(_M).where(_M.c.id == bindparam("material_id")).returning(*_M.c)


class MaterialError(ServiceError):
    pass


def account_of(enterprise: Enterprise) -> str:
    return f"e{enterprise.id}"


class MaterialService:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, store: ObjectStore, catalogue: Catalogue,
                 *, max_head_age: float = 0, clock: Clock = SYSTEM):
        self.max_head_age = max_head_age
        self.clock = clock  # materials' validity and the chain head's age
        self.sessions = sessions
        self._engine = sessions.kw["bind"]  # Core connections on the upload path, no ORM session
        self.chain = chain
        self.store = store
        self.catalogue = catalogue

    # --- upload --------------------------------------------------------------------------------
    def ingest(self, enterprise: Enterprise, upload: Spooled, *, file_name: str, title: str | None,
               type_code: str | None, valid_until: int | None, actor_key_id: int | None,
               filed_by_clerk: bool = False, supersedes: Material | None = None) -> Material:
        """Store an upload as a new material (or a new version of `supersedes`)."""
        try:
            if upload.size == 0:
                raise MaterialError(Kind.INVALID, "empty_file", "the file is empty")
            try:
                content_type = sniff(upload.head, file_name)
            except UnsupportedContent as exc:
                raise MaterialError(Kind.UNSUPPORTED, "unsupported_content", str(exc)) from None
            classified = False
            if supersedes is not None:
                type_code = supersedes.type_code
            elif not type_code:
                type_code = self.catalogue.classify(title or file_name)
                classified = True
            if type_code not in self.catalogue.types:
                raise MaterialError(Kind.INVALID, "unknown_folder", f"no material folder {type_code!r}")
            if valid_until is None:
                days = self.catalogue.types[type_code].validity_days
                valid_until = int(self.clock.time()) + days * 86400 if days else None
            elif valid_until <= int(self.clock.time()):
                raise MaterialError(Kind.INVALID, "already_expired", "the validity date is in the past")
            with self._engine.begin() as c:  # write-ahead: the row exists before the bytes do
                if supersedes is None:
                    # Idempotent: the same bytes into the same folder again (a retry after a lost
                    # response or a crash) is the material already there.
                    existing = c.execute(_SAME_BYTES, {"enterprise": enterprise.id, "sha256": upload.sha256,
                                                       "folder": type_code}).first()
                    if existing is not None:
                        material = Material(**existing._mapping)
                        material.already_present = True
                        return material
                lineage = (supersedes.lineage_id or supersedes.id) if supersedes else None
                material_id = c.execute(_WRITE_AHEAD, dict(
                    enterprise_id=enterprise.id, type_code=type_code, classified=classified,
                    title=(title or file_name)[:200], file_name=file_name, content_type=content_type,
                    size=upload.size, sha256=upload.sha256, sm3=upload.sm3, valid_until=valid_until,
                    state=MaterialState.STORING.value, uploaded_by_key_id=actor_key_id,
                    version=supersedes.version + 1 if supersedes else 1, lineage_id=lineage,
                    supersedes_id=supersedes.id if supersedes else None, reuse_count=0,
                )).scalar_one()
                self.store.write_ahead(c, account_of(enterprise), upload.sha256)  # its data key, if sealed
            failpoint("upload.after_db")
            try:
                self.store.put_file(account_of(enterprise), upload.sha256, upload.path, content_type)
            except StorageError:
                with self._engine.begin() as c:
                    c.execute(delete(_M).where(_M.c.id == material_id))
                raise
            failpoint("upload.after_store")
            values = {"state": MaterialState.UPLOADED.value}
            if filed_by_clerk:
                values = self._confirmation(TrustLabel.ORIGINAL_CHECKED, actor_key_id)
            if supersedes is None:
                values["lineage_id"] = material_id  # a first version starts its own lineage
            with self._engine.begin() as c:
                row = c.execute(_STORED, {"material_id": material_id, **values}).one()
            if filed_by_clerk and supersedes is not None:
                self._supersede(supersedes.id)
                return self.get(material_id)
            return Material(**row._mapping)  # as stored, without reading it back
        finally:
            upload.discard()

    @staticmethod
    def _confirmation(label: TrustLabel, actor_key_id: int | None) -> dict:
        return {"state": MaterialState.CONFIRMED.value, "label": label.value, "confirmed_by_key_id": actor_key_id,
                "confirmed_at": datetime.now(timezone.utc), "salt": secrets.token_bytes(32)}

    def reconcile_storage(self, older_than: float = 60.0) -> int:
        """Finish or remove uploads a crash left between database and store."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
        with self.sessions() as s:
            rows = list(s.execute(select(Material.id, Material.sha256, Enterprise.id.label("eid"))
                                  .join(Enterprise, Enterprise.id == Material.enterprise_id)
                                  .where(Material.state == MaterialState.STORING.value,
                                         Material.created_at <= cutoff)))
        for row in rows:
            stored = self.store.exists(f"e{row.eid}", row.sha256)
            with self.sessions.begin() as s:
                if stored:
                    s.execute(update(Material).where(Material.id == row.id).values(state=MaterialState.UPLOADED.value))
                else:
                    s.execute(delete(Material).where(Material.id == row.id))
        return len(rows)

    # --- lifecycle -------------------------------------------------------------------------------
    def get(self, material_id: int, enterprise_id: int | None = None) -> Material:
        with self.sessions() as s:
            m = s.get(Material, material_id)
        if m is None or (enterprise_id is not None and m.enterprise_id != enterprise_id) \
                or m.state == MaterialState.STORING.value:
            # Another enterprise's material is "not found", so ids reveal nothing.
            raise MaterialError(Kind.NOT_FOUND, "material_not_found", f"no material {material_id}")
        return m

    def confirm(self, material: Material, actor_key_id: int | None, *, folder: str | None = None) -> Material:
        """The owner confirms a material (optionally correcting the suggested folder first):
        it gets the self-attested label and is queued for anchoring."""
        if material.state != MaterialState.UPLOADED.value:
            raise MaterialError(Kind.CONFLICT, "not_awaiting_confirmation", f"material {material.id} is {material.state}")
        values = self._confirmation(TrustLabel.SELF_ATTESTED, actor_key_id)
        if folder is not None and folder != material.type_code:
            if folder not in self.catalogue.types:
                raise MaterialError(Kind.INVALID, "unknown_folder", f"no folder {folder!r}")
            if material.supersedes_id:
                raise MaterialError(Kind.CONFLICT, "version_folder_fixed", "a new version stays in its material's folder")
            values.update(type_code=folder, classified=False)
        with self.sessions.begin() as s:
            s.execute(update(Material).where(Material.id == material.id,
                                             Material.state == MaterialState.UPLOADED.value)
                      .values(**values))
        if material.supersedes_id:
            self._supersede(material.supersedes_id)
        return self.get(material.id)

    def _supersede(self, material_id: int) -> None:
        with self.sessions.begin() as s:
            s.execute(update(Material).where(Material.id == material_id, Material.state.in_(LIVE + (
                MaterialState.UPLOADED.value,))).values(state=MaterialState.SUPERSEDED.value))

    def withdraw(self, material: Material) -> Material:
        return self._end(material, MaterialState.WITHDRAWN, "withdrawn")

    def revoke(self, material: Material, reason: str) -> Material:
        return self._end(material, MaterialState.REVOKED, reason or "revoked")

    def _end(self, material: Material, state: MaterialState, reason: str) -> Material:
        if material.state in (MaterialState.WITHDRAWN.value, MaterialState.REVOKED.value):
            raise MaterialError(Kind.CONFLICT, f"already_{material.state}", f"material {material.id} is already {material.state}")
        # Anything with a leaf (anchored or in a batch on its way) must be revoked on chain too;
        # the anchoring loop sends it, so a crash here loses nothing.
        needs_chain = material.leaf is not None or material.state == MaterialState.CONFIRMED.value
        with self.sessions.begin() as s:
            s.execute(update(Material).where(Material.id == material.id).values(
                state=state.value, revocation_reason=reason[:200],
                revocation_state=ChainState.PENDING.value if needs_chain else None))
        return self.get(material.id)

    def held_sha256(self, material: Material) -> bytes:
        """The SHA-256 of what the store holds for `material` now. An object that no longer opens
        (its sealed bytes changed) holds no document: its digest is all zeros, which no file has
        and no fingerprint matches. `StorageError` when the store cannot answer."""
        import hashlib

        held = hashlib.sha256()
        try:
            for chunk in self.content(material):
                held.update(chunk)
        except CryptoError:
            return bytes(32)
        return held.digest()

    def content(self, material: Material) -> Iterator[bytes]:
        with self.sessions() as s:
            enterprise = s.get(Enterprise, material.enterprise_id)
        return self.store.open(account_of(enterprise), material.sha256)

    def list(self, enterprise: Enterprise, type_code: str | None = None, state: str | None = None) -> list[Material]:
        q = select(Material).where(Material.enterprise_id == enterprise.id,
                                   Material.state != MaterialState.STORING.value)
        if type_code:
            q = q.where(Material.type_code == type_code)
        if state:
            q = q.where(Material.state == state)
        with self.sessions() as s:
            return list(s.scalars(q.order_by(Material.type_code, Material.lineage_id, Material.version)))

    def folder_counts(self, enterprise: Enterprise) -> dict[str, int]:
        with self.sessions() as s:
            # What the bank holds: an upload not yet confirmed is in no folder (it waits in 待确认).
            rows = s.execute(select(Material.type_code, func.count()).where(
                Material.enterprise_id == enterprise.id, Material.state.in_(LIVE)).group_by(Material.type_code))
            return {code: n for code, n in rows}

    # --- proofs and verification ------------------------------------------------------------
    def bundle(self, material: Material) -> ProofBundle:
        if material.leaf is None or material.batch_id is None:
            raise MaterialError(Kind.CONFLICT, "not_anchored", f"material {material.id} is not anchored yet")
        with self.sessions() as s:
            batch = s.get(AnchorBatch, material.batch_id)
            enterprise = s.get(Enterprise, material.enterprise_id)
        if batch.state != ChainState.CONFIRMED.value:
            raise MaterialError(Kind.CONFLICT, "not_anchored", f"material {material.id}'s batch is not on chain yet")
        return ProofBundle(
            leaf=LeafInput(bytes.fromhex(material.sha256), chain_key(enterprise.uscc), material.type_code,
                           material.version, material.valid_until or 0, material.leaf_index, material.salt),
            proof=[bytes.fromhex(p) for p in json.loads(material.proof)],
            root=batch.root,
            anchor=Anchor(batch.chain_id, batch.contract, batch.tx_hash, batch.block_number),
            content_sm3=bytes.fromhex(material.sm3),
            digest=self.chain.tree_hash,
        )

    def verify(self, bundle: ProofBundle, content_sha256: bytes | None) -> Verdict:
        verdict = verify_material(bundle, content_sha256=content_sha256, client=self.chain.client,
                                  trust=self.chain.trust, now=int(self.clock.time()), max_head_age=self.max_head_age)
        return self._with_record([bundle], [verdict])[0]

    def verify_many(self, items: list[tuple[ProofBundle, bytes | None]]) -> list[Verdict]:
        verdicts = verify_materials(items, client=self.chain.client, trust=self.chain.trust,
                                    now=int(self.clock.time()), max_head_age=self.max_head_age)
        return self._with_record([b for b, _ in items], verdicts)

    def _with_record(self, bundles: list[ProofBundle], verdicts: list[Verdict]) -> list[Verdict]:
        """The database is the record: a material it holds as withdrawn or revoked is INVALID
        `withdrawn` at once, before (or whatever) the chain says; one query per call."""
        own = {(b.root, b.leaf.index): i for i, b in enumerate(bundles)
               if self.chain.trust.trusts(b.anchor.chain_id, b.anchor.contract)}
        if not own:
            return verdicts
        gone = (MaterialState.WITHDRAWN.value, MaterialState.REVOKED.value)
        with self._engine.connect() as c:
            for root, index, material_id in c.execute(
                    select(ReplacedProof.root, ReplacedProof.leaf_index, ReplacedProof.material_id)
                    .where(ReplacedProof.root.in_({root for root, _ in own}))):
                i = own.get((bytes(root), index))
                if i is not None:  # its key was declared compromised; the material was witnessed again
                    verdicts[i].facts["replaced_by"] = {"material_id": material_id,
                                                        "proof": f"/api/v1/materials/{material_id}/proof"}
            rows = c.execute(select(AnchorBatch.root, Material.leaf_index, Material.state)
                             .join(Material, Material.batch_id == AnchorBatch.id)
                             .where(AnchorBatch.root.in_({root for root, _ in own}), Material.state.in_(gone)))
            for root, index, state in rows:
                i = own.get((bytes(root), index))
                if i is None:
                    continue
                verdict = verdicts[i]
                held = verdict.check(CheckName.STATUS)
                if held is not None and held.status is Status.INVALID:
                    continue  # the chain says so already (revoked, expired): its reason stands
                withdrawn = Check(CheckName.STATUS, Status.INVALID, Reason.WITHDRAWN,
                                  f"the material bank holds this material as {state} (撤回/撤销)")
                verdict.checks = [c for c in verdict.checks if c.name != CheckName.STATUS] + [withdrawn]
        return verdicts

    # --- reuse ----------------------------------------------------------------------------------
    def newest_usable(self, session: Session, enterprise_id: int, type_code: str) -> Material | None:
        """The newest valid, confirmed, anchored material of a type."""
        now = int(self.clock.time())
        return session.scalar(
            select(Material).where(Material.enterprise_id == enterprise_id, Material.type_code == type_code,
                                   Material.state == MaterialState.ANCHORED.value,
                                   (Material.valid_until.is_(None)) | (Material.valid_until > now))
            .order_by(Material.confirmed_at.desc(), Material.id.desc()).limit(1))

    def apply(self, enterprise: Enterprise, item_code: str, actor_key_id: int | None) -> int:
        item = self.catalogue.items.get(item_code)
        if item is None:
            raise MaterialError(Kind.NOT_FOUND, "service_item_not_found", f"no service item {item_code!r}")
        with self.sessions.begin() as s:
            application = Application(enterprise_id=enterprise.id, service_item=item.code,
                                      created_by_key_id=actor_key_id)
            s.add(application)
            s.flush()
            for type_code in item.requires:
                found = self.newest_usable(s, enterprise.id, type_code)
                s.add(ApplicationMaterial(application_id=application.id, type_code=type_code,
                                          material_id=found.id if found else None))
            return application.id

    def application_ids(self, enterprise: Enterprise) -> list[int]:
        with self.sessions() as s:
            return list(s.scalars(select(Application.id).where(Application.enterprise_id == enterprise.id)
                                  .order_by(Application.id.desc()).limit(100)))

    def application(self, application_id: int) -> tuple[Application, list[tuple[str, Material | None]]]:
        with self.sessions() as s:
            application = s.get(Application, application_id)
            if application is None:
                raise MaterialError(Kind.NOT_FOUND, "application_not_found", f"no application {application_id}")
            rows = s.execute(select(ApplicationMaterial, Material)
                             .outerjoin(Material, Material.id == ApplicationMaterial.material_id)
                             .where(ApplicationMaterial.application_id == application_id)
                             .order_by(ApplicationMaterial.id))
            return application, [(am.type_code, m) for am, m in rows]

    def record_reuse(self, application: Application, items: list[tuple[str, Material | None]], material_id: int,
                     verifier_key_id: int, verifier_org: str) -> tuple[Reuse, Verdict]:
        """The receiving department checks a material of a loaded application (`application`),
        independently, and the check is recorded as one reuse. A material not fit for reuse is refused."""
        application_id = application.id
        material = next((m for _, m in items if m is not None and m.id == material_id), None)
        if material is None:
            raise MaterialError(Kind.NOT_FOUND, "material_not_in_application",
                                f"material {material_id} is not part of application {application_id}")
        if material.state != MaterialState.ANCHORED.value:
            raise MaterialError(Kind.CONFLICT, "material_not_reusable", f"material {material_id} is {material.state}")
        if material.valid_until and material.valid_until <= int(self.clock.time()):
            raise MaterialError(Kind.CONFLICT, "material_expired", f"material {material_id} has expired")
        # The receiving department trusts what the store holds now, not the hash written at upload.
        verdict = self.verify(self.bundle(material), self.held_sha256(material))
        with self.sessions.begin() as s:
            existing = s.scalar(select(Reuse).where(Reuse.material_id == material_id,
                                                    Reuse.application_id == application_id))
            if existing is None:
                existing = Reuse(material_id=material_id, application_id=application_id,
                                 service_item=application.service_item, verifier_key_id=verifier_key_id,
                                 verifier_org=verifier_org, verdict=verdict.status.value)
                s.add(existing)
                s.execute(update(Material).where(Material.id == material_id)
                          .values(reuse_count=Material.reuse_count + 1))
        return existing, verdict

    def reuses(self, material_id: int) -> list[Reuse]:
        with self.sessions() as s:
            return list(s.scalars(select(Reuse).where(Reuse.material_id == material_id).order_by(Reuse.id)))
